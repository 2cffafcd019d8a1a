/**
 * A worker process of the contract suite: opens the store at the location given in argv (the same
 * DATA_DIR or database as its siblings), prints READY, waits for the parent's go file, then appends
 * its share concurrently and prints `RESULT <json>` with what the store acknowledged.
 *
 * argv[2]: JSON WorkerPlan.
 */
import fs from "node:fs";
import { newMessage, openStore, type Location } from "./stores.ts";
import type { AppendResult, NewMessage } from "../../src/store/types.ts";

export interface WorkerPlan {
  loc: Location;
  goFile: string;
  worker: number;
  /** Messages appended per batch. */
  batch: number;
  /** Batches kept in flight at once by this process. */
  inFlight: number;
  /** The messages: conversation, sender, and an optional idempotency key. */
  messages: { conversationId: string; senderId: string; clientMessageId?: string }[];
}

export interface WorkerAck {
  id: string;
  conversationId: string;
  seq: number;
  duplicate: boolean;
  sentId: string;
  clientMessageId?: string;
}

const plan = JSON.parse(process.argv[2] ?? "") as WorkerPlan;
const store = await openStore(plan.loc);
console.log("READY");
for (let i = 0; !fs.existsSync(plan.goFile); i++) {
  if (i > 3000) throw new Error("no go signal within 30 s");
  await new Promise((r) => setTimeout(r, 10));
}

const batches: NewMessage[][] = [];
for (let i = 0; i < plan.messages.length; i += plan.batch) {
  batches.push(plan.messages.slice(i, i + plan.batch).map((m, j) => newMessage(m.conversationId, m.senderId, `w${plan.worker} #${i + j}`, m.clientMessageId)));
}
const acks: WorkerAck[] = [];
let next = 0;
async function lane(): Promise<void> {
  while (next < batches.length) {
    const batch = batches[next++]!;
    const results: AppendResult[] = await store.appendBatch(batch);
    results.forEach((r, k) => {
      const ack: WorkerAck = { id: r.message.id, conversationId: r.message.conversationId, seq: r.message.seq, duplicate: r.duplicate, sentId: batch[k]!.id };
      if (r.message.clientMessageId !== undefined) ack.clientMessageId = r.message.clientMessageId;
      acks.push(ack);
    });
  }
}
await Promise.all(Array.from({ length: plan.inFlight }, lane));
await store.close();
console.log(`RESULT ${JSON.stringify(acks)}`);
