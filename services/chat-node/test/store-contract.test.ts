/**
 * The MessageStore contract, one suite looped over every store (test/store-contract/stores.ts):
 * seq 1..n without gap or repeat, also from several processes at once; idempotency, also under
 * racing duplicates from several processes; paging both ways; catch-up; membership queries;
 * durability across close and reopen; behaviour when the database is down.
 * SQLite always runs. MongoDB runs when MONGO_URL is set and is otherwise SKIPPED, loudly.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { startProcess, stopAll, waitForOutput, type Proc } from "@chat/test-kit";
import { StoreUnavailableError, type MessageStore, type NewMessage } from "../src/store/types.ts";
import { MongoStore } from "../src/store/mongo-store.ts";
import { advanceClock, newMessage, openStore, variants, type Location } from "./store-contract/stores.ts";
import type { WorkerAck, WorkerPlan } from "./store-contract/append-worker.ts";

const WORKER = path.join(import.meta.dirname, "store-contract/append-worker.ts");

after(() => stopAll());

async function withStore(loc: Location, fn: (store: MessageStore) => Promise<void>): Promise<void> {
  const store = await openStore(loc);
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

async function conversation(store: MessageStore, id: string, members: string[], createdAt = advanceClock(1)) {
  return store.createConversation({ id, title: `title of ${id}`, members, createdAt });
}

/** Every message of the conversation, ascending, read through catch-up pages of `pageSize`. */
async function readAll(store: MessageStore, conversationId: string, pageSize = 200) {
  const all = [];
  for (let afterSeq = 0, pages = 0; ; pages++) {
    assert.ok(pages < 10_000, "catch-up does not end");
    const page = await store.listMessages(conversationId, { after: afterSeq, limit: pageSize });
    all.push(...page.messages);
    if (!page.hasMore) return all;
    afterSeq = page.messages.at(-1)!.seq;
  }
}

/** Asserts that the conversation holds exactly seq 1..n, and that lastSeq says n. */
async function assertNoGap(store: MessageStore, conversationId: string, n: number) {
  const all = await readAll(store, conversationId, 97);
  assert.deepEqual(all.map((m) => m.seq), Array.from({ length: n }, (_, i) => i + 1), `${conversationId}: seq 1..${n}`);
  assert.equal((await store.getConversation(conversationId))?.lastSeq, n, `${conversationId}: lastSeq`);
  return all;
}

/** Runs one worker process per plan on the same location, started together; returns their acks. */
async function runWorkers(loc: Location, plans: Omit<WorkerPlan, "loc" | "goFile" | "worker">[]): Promise<WorkerAck[][]> {
  const goDir = fs.mkdtempSync(path.join(os.tmpdir(), "chat-store-go-"));
  const goFile = path.join(goDir, "go");
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, MONGO_URL: process.env.MONGO_URL ?? "" };
  const procs: Proc[] = plans.map((p, worker) => startProcess(process.execPath, [WORKER, JSON.stringify({ ...p, loc, goFile, worker })], { env }));
  try {
    for (const p of procs) await waitForOutput(p, (o) => o.includes("READY"), 60_000, "a store worker to open the store");
    fs.writeFileSync(goFile, "go");
    const exits = await Promise.all(procs.map((p) => p.exited));
    return procs.map((p, i) => {
      assert.equal(exits[i]!.code, 0, `worker ${i} failed:\n${p.output().slice(-3000)}`);
      const line = p.output().split("\n").find((l) => l.startsWith("RESULT "));
      assert.ok(line, `worker ${i} printed no result`);
      return JSON.parse(line.slice("RESULT ".length)) as WorkerAck[];
    });
  } finally {
    await Promise.all(procs.map((p) => p.stop("SIGKILL")));
    fs.rmSync(goDir, { recursive: true, force: true });
  }
}

for (const v of variants) {
  if (v.skip) process.stderr.write(`\n!!! store contract: SKIPPING the ${v.kind} store: ${v.skip}\n\n`);
  const opts = v.skip ? { skip: v.skip } : {};

  describe(`MessageStore contract: ${v.kind}`, () => {
    /** One test on a fresh location, cleaned up afterwards. */
    const it = (name: string, fn: (loc: Location) => Promise<void>) =>
      test(name, opts, async () => {
        const loc = v.fresh();
        try {
          await fn(loc);
        } finally {
          await v.cleanup(loc);
        }
      });

    it("gives each conversation seq 1, 2, 3... and answers in input order", async (loc) => {
      await withStore(loc, async (store) => {
        await conversation(store, "a", ["u1", "u2"]);
        await conversation(store, "b", ["u1", "u2"]);
        const batch = [newMessage("a", "u1", "a1"), newMessage("b", "u2", "b1"), newMessage("a", "u2", "a2"), newMessage("a", "u1", "a3")];
        const res = await store.appendBatch(batch);
        assert.deepEqual(res.map((r) => [r.message.id, r.message.conversationId, r.message.seq, r.duplicate]), [
          [batch[0]!.id, "a", 1, false], [batch[1]!.id, "b", 1, false], [batch[2]!.id, "a", 2, false], [batch[3]!.id, "a", 3, false],
        ]);
        assert.deepEqual(res[0]!.message, { ...batch[0]!, seq: 1 });
        assert.equal("clientMessageId" in res[0]!.message, false);
        const more = await store.appendBatch([newMessage("b", "u1", "b2"), newMessage("a", "u1", "a4")]);
        assert.deepEqual(more.map((r) => r.message.seq), [2, 4]);
        assert.deepEqual(await store.appendBatch([]), []);
        await assertNoGap(store, "a", 4);
        await assertNoGap(store, "b", 2);
      });
    });

    it("is idempotent on (conversation, sender, clientMessageId), in and across batches, consuming no seq", async (loc) => {
      await withStore(loc, async (store) => {
        await conversation(store, "c", ["u1", "u2"]);
        await conversation(store, "d", ["u1", "u2"]);
        const first = newMessage("c", "u1", "hello", "k1");
        const [stored] = await store.appendBatch([first]);
        assert.deepEqual(stored, { message: { ...first, seq: 1 }, duplicate: false });
        // A repeat in a later batch, twice in one batch, and keys that are NOT the same key.
        const batch = [
          newMessage("c", "u1", "hello again", "k1"),
          newMessage("c", "u1", "new", "k2"),
          newMessage("c", "u1", "new, repeated", "k2"),
          newMessage("c", "u2", "other sender", "k1"),
          newMessage("d", "u1", "other conversation", "k1"),
          newMessage("c", "u1", "no key"),
          newMessage("c", "u1", "no key either"),
        ];
        const res = await store.appendBatch(batch);
        assert.deepEqual(res[0], { message: { ...first, seq: 1 }, duplicate: true });
        assert.deepEqual(res[1], { message: { ...batch[1]!, seq: 2 }, duplicate: false });
        assert.deepEqual(res[2], { message: { ...batch[1]!, seq: 2 }, duplicate: true });
        assert.deepEqual(res.slice(3).map((r) => [r.message.id, r.message.seq, r.duplicate]), [
          [batch[3]!.id, 3, false], [batch[4]!.id, 1, false], [batch[5]!.id, 4, false], [batch[6]!.id, 5, false],
        ]);
        const all = await assertNoGap(store, "c", 5);
        assert.equal(all.filter((m) => m.clientMessageId === "k1").length, 2, "one k1 per sender");
        await assertNoGap(store, "d", 1);
        // Only repeats: nothing consumed.
        const again = await store.appendBatch([newMessage("c", "u1", "x", "k2"), newMessage("c", "u1", "y", "k1")]);
        assert.deepEqual(again.map((r) => [r.message.seq, r.duplicate]), [[2, true], [1, true]]);
        await assertNoGap(store, "c", 5);
      });
    });

    it("pages backward with before/limit and forward with after/limit, hasMore in the paging direction", async (loc) => {
      await withStore(loc, async (store) => {
        await conversation(store, "p", ["u1"]);
        const sent = Array.from({ length: 25 }, (_, i) => newMessage("p", "u1", `m${i + 1}`, i % 2 ? `key${i}` : undefined));
        await store.appendBatch(sent.slice(0, 10));
        await store.appendBatch(sent.slice(10));
        const seqs = (page: { messages: { seq: number }[] }) => page.messages.map((m) => m.seq);
        const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

        const newest = await store.listMessages("p", { limit: 10 });
        assert.deepEqual([seqs(newest), newest.hasMore], [range(16, 25), true]);
        const back1 = await store.listMessages("p", { before: 16, limit: 10 });
        assert.deepEqual([seqs(back1), back1.hasMore], [range(6, 15), true]);
        const back2 = await store.listMessages("p", { before: 6, limit: 10 });
        assert.deepEqual([seqs(back2), back2.hasMore], [range(1, 5), false]);
        assert.deepEqual(await store.listMessages("p", { before: 1, limit: 10 }), { messages: [], hasMore: false });
        const all = await store.listMessages("p", { limit: 200 });
        assert.deepEqual([seqs(all), all.hasMore], [range(1, 25), false]);
        assert.deepEqual(all.messages, sent.map((m, i) => ({ ...m, seq: i + 1 })), "stored messages come back field for field");

        const fwd1 = await store.listMessages("p", { after: 0, limit: 10 });
        assert.deepEqual([seqs(fwd1), fwd1.hasMore], [range(1, 10), true]);
        const fwd2 = await store.listMessages("p", { after: 20, limit: 10 });
        assert.deepEqual([seqs(fwd2), fwd2.hasMore], [range(21, 25), false]);
        const exact = await store.listMessages("p", { after: 15, limit: 10 });
        assert.deepEqual([seqs(exact), exact.hasMore], [range(16, 25), false]);
        const window = await store.listMessages("p", { after: 5, before: 9, limit: 10 });
        assert.deepEqual([seqs(window), window.hasMore], [range(6, 8), false]);
        assert.deepEqual(await store.listMessages("unknown", { limit: 10 }), { messages: [], hasMore: false });
      });
    });

    it("catches up: after=n returns exactly what came after n, and nothing once up to date", async (loc) => {
      await withStore(loc, async (store) => {
        await conversation(store, "k", ["u1", "u2"]);
        await store.appendBatch(Array.from({ length: 7 }, (_, i) => newMessage("k", "u1", `old ${i}`)));
        const seen = (await store.getConversation("k"))!.lastSeq;
        assert.equal(seen, 7);
        const later = Array.from({ length: 450 }, (_, i) => newMessage("k", i % 2 ? "u1" : "u2", `new ${i}`));
        for (let i = 0; i < later.length; i += 50) await store.appendBatch(later.slice(i, i + 50));
        const missed = [];
        for (let afterSeq = seen, pages = 0; pages < 100; pages++) {
          const page = await store.listMessages("k", { after: afterSeq, limit: 200 });
          missed.push(...page.messages);
          if (!page.hasMore) break;
          afterSeq = page.messages.at(-1)!.seq;
        }
        assert.deepEqual(missed, later.map((m, i) => ({ ...m, seq: seen + 1 + i })));
        assert.deepEqual(await store.listMessages("k", { after: 457, limit: 200 }), { messages: [], hasMore: false });
      });
    });

    it("answers membership queries: a user's conversations, newest activity first", async (loc) => {
      await withStore(loc, async (store) => {
        const created = await conversation(store, "x", ["alice", "bob"]);
        assert.deepEqual(created, { id: "x", title: "title of x", members: ["alice", "bob"], createdAt: created.createdAt, lastSeq: 0, lastActivityAt: created.createdAt });
        await conversation(store, "y", ["alice", "carol"]);
        await conversation(store, "z", ["bob", "carol"]);
        await conversation(store, "w", ["alice"]);
        assert.deepEqual(await store.getConversation("x"), created);
        assert.equal(await store.getConversation("nope"), null);
        // Created x, y, z, w in that order: without messages, w is the newest activity.
        assert.deepEqual((await store.listConversations("alice", 10)).map((c) => c.id), ["w", "y", "x"]);

        advanceClock(10_000);
        await store.appendBatch([newMessage("y", "carol", "y first")]);
        advanceClock(10_000);
        const [last] = await store.appendBatch([newMessage("x", "bob", "x latest")]);
        const alice = await store.listConversations("alice", 10);
        assert.deepEqual(alice.map((c) => c.id), ["x", "y", "w"]);
        assert.equal(alice[0]!.lastSeq, 1);
        assert.equal(alice[0]!.lastActivityAt, last!.message.timestamp);
        assert.deepEqual((await store.listConversations("alice", 2)).map((c) => c.id), ["x", "y"]);
        assert.deepEqual((await store.listConversations("carol", 10)).map((c) => c.id), ["y", "z"]);
        assert.deepEqual(await store.listConversations("mallory", 10), []);
      });
    });

    it("keeps everything across close and reopen, and continues seq and idempotency after it", async (loc) => {
      const before: NewMessage[] = [];
      await withStore(loc, async (store) => {
        await conversation(store, "r", ["u1", "u2"]);
        for (let i = 0; i < 5; i++) {
          const batch = [newMessage("r", "u1", `r${i}a`, `rk${i}`), newMessage("r", "u2", `r${i}b`)];
          before.push(...batch);
          await store.appendBatch(batch);
        }
      });
      await withStore(loc, async (store) => {
        const all = await assertNoGap(store, "r", 10);
        assert.deepEqual(all, before.map((m, i) => ({ ...m, seq: i + 1 })));
        assert.deepEqual((await store.listConversations("u2", 10)).map((c) => c.id), ["r"]);
        const res = await store.appendBatch([newMessage("r", "u1", "retry after restart", "rk3"), newMessage("r", "u1", "new after restart")]);
        assert.deepEqual(res.map((r) => [r.message.id, r.message.seq, r.duplicate]), [[before[6]!.id, 7, true], [res[1]!.message.id, 11, false]]);
      });
      // A second init on an existing database is a no-op for schema and indexes.
      await withStore(loc, (store) => assertNoGap(store, "r", 11).then(() => undefined));
    });

    it("numbers without gap or repeat while several processes append to the same conversations", async (loc) => {
      const conversations = ["m1", "m2", "m3"];
      await withStore(loc, async (store) => {
        for (const id of conversations) await conversation(store, id, ["u1", "u2"]);
      });
      const perWorker = 240;
      const plans = Array.from({ length: 4 }, (_, w) => ({
        batch: 1 + w * 3, // 1, 4, 7, 10 messages per batch: single writes and batches interleave
        inFlight: 3,
        messages: Array.from({ length: perWorker }, (_, i) => ({ conversationId: conversations[(i + w) % 3]!, senderId: `u${1 + (i % 2)}` })),
      }));
      const acks = (await runWorkers(loc, plans)).flat();
      assert.equal(acks.length, 4 * perWorker);
      assert.ok(acks.every((a) => !a.duplicate && a.id === a.sentId));
      await withStore(loc, async (store) => {
        for (const id of conversations) {
          const all = await assertNoGap(store, id, (4 * perWorker) / 3);
          const bySeq = new Map(all.map((m) => [m.seq, m.id]));
          for (const a of acks.filter((x) => x.conversationId === id)) assert.equal(bySeq.get(a.seq), a.id, "what was acknowledged is what is stored");
        }
      });
    });

    it("stores one message per key when several processes race the same idempotency keys", async (loc) => {
      await withStore(loc, async (store) => conversation(store, "race", ["racer", "other"]).then(() => undefined));
      const keys = 60;
      // Every worker sends every key (in its own order, some twice) between unkeyed messages, so
      // a duplicate that consumed a seq would show as a gap.
      const plans = Array.from({ length: 4 }, (_, w) => {
        const messages: WorkerPlan["messages"] = [];
        for (let i = 0; i < keys; i++) {
          const k = w % 2 ? keys - 1 - i : i;
          messages.push({ conversationId: "race", senderId: "racer", clientMessageId: `key-${k}` });
          if (i % 3 === w % 3) messages.push({ conversationId: "race", senderId: "racer", clientMessageId: `key-${k}` });
          if (i % 4 === 0) messages.push({ conversationId: "race", senderId: "other" });
        }
        return { batch: 2 + w, inFlight: 2, messages };
      });
      const acks = (await runWorkers(loc, plans)).flat();
      const unkeyed = acks.filter((a) => a.clientMessageId === undefined).length;
      await withStore(loc, async (store) => {
        const all = await assertNoGap(store, "race", keys + unkeyed);
        for (let k = 0; k < keys; k++) {
          const key = `key-${k}`;
          const stored = all.filter((m) => m.clientMessageId === key);
          assert.equal(stored.length, 1, `${key} stored once`);
          const answers = acks.filter((a) => a.clientMessageId === key);
          assert.ok(answers.every((a) => a.id === stored[0]!.id && a.seq === stored[0]!.seq), `${key}: every sender got the stored original`);
          assert.equal(answers.filter((a) => !a.duplicate).length, 1, `${key}: exactly one send was the new one`);
        }
      });
    });

    it("rejects with StoreUnavailableError once closed", async (loc) => {
      const store = await openStore(loc);
      await conversation(store, "gone", ["u1"]);
      await store.close();
      await assert.rejects(store.ping(), StoreUnavailableError);
      await assert.rejects(store.appendBatch([newMessage("gone", "u1", "late")]), StoreUnavailableError);
      await assert.rejects(store.listMessages("gone", { limit: 10 }), StoreUnavailableError);
      await assert.rejects(store.getConversation("gone"), StoreUnavailableError);
      await withStore(loc, (s) => assertNoGap(s, "gone", 0).then(() => undefined));
    });

    if (v.kind !== "mongodb") {
      it("while another process holds the database's write lock: UNAVAILABLE, nothing stored, then recovers without a gap", async (loc) => {
        const store = await openStore(loc, { busyTimeoutMs: 100 });
        try {
          await conversation(store, "l", ["u1"]);
          await store.appendBatch([newMessage("l", "u1", "before")]);
          const holder = new DatabaseSync(path.join(loc.where, "chat.db"));
          holder.exec("PRAGMA busy_timeout = 5000");
          holder.exec("BEGIN EXCLUSIVE");
          const refused = newMessage("l", "u1", "refused", "will-retry");
          try {
            await assert.rejects(store.appendBatch([refused, newMessage("l", "u1", "refused too")]), StoreUnavailableError);
          } finally {
            holder.exec("COMMIT");
            holder.close();
          }
          const [retried] = await store.appendBatch([{ ...refused, id: "retry-id" }]);
          assert.deepEqual([retried!.message.seq, retried!.message.id, retried!.duplicate], [2, "retry-id", false]);
          await assertNoGap(store, "l", 2);
        } finally {
          await store.close();
        }
      });
    } else {
      // Needs no MongoDB, so it runs even without MONGO_URL: the real driver against a refused port.
      test("when the server cannot be reached: init, ping and appends reject with StoreUnavailableError", async () => {
        // Port 9 (discard) on loopback: nothing listens, the connection is refused.
        const store = new MongoStore({ url: "mongodb://127.0.0.1:9/?replicaSet=rs0", dbName: "unreachable", writeConcern: "majority", serverSelectionTimeoutMS: 1000 });
        try {
          await assert.rejects(store.init(), StoreUnavailableError);
          await assert.rejects(store.ping(), StoreUnavailableError);
          await assert.rejects(store.appendBatch([newMessage("c", "u1", "never")]), StoreUnavailableError);
        } finally {
          await store.close();
        }
      });
    }
  });
}
