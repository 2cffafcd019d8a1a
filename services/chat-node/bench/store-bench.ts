/**
 * `pnpm bench:store`: drives the MessageStore interface in-process, as a node does, with N
 * concurrent producers over M conversations, each producer sending its next message as soon as
 * the previous one is committed. For each reachable store (SQLite always, MongoDB when MONGO_URL
 * is set) it runs once with group commit (the node's GroupCommitter) and once with one write per
 * message (batchMax 1), and prints committed messages per second and p50/p99 commit latency side
 * by side as a Markdown table, with messages per commit and the process's CPU per message (every
 * thread, from `process.cpuUsage()` over the producers' window). A benchmark, not a test: it
 * reports, it asserts nothing. `--producers 7` caps every commit at 7 messages (each producer waits
 * for its commit), the batch a node forms at 1,500 msg/s (`pnpm bench -- --fixed` prints it).
 *
 *   pnpm bench:store [--duration 8] [--producers 100] [--conversations 50] [--batch-max 512]
 *                    [--sync FULL|NORMAL] [--stores sqlite,sqlite-threaded,mongodb] [--client-ids yes|no]
 * `--client-ids no` sends without clientMessageId: no idempotency look-up or index entry.
 * Environment: BENCH_DURATION_S, MONGO_URL (a replica set), MONGO_WRITE_CONCERN.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { randomUUID } from "node:crypto";
import { newClientMessageId } from "@chat/protocol";
import { MongoClient } from "mongodb";
import { SqliteStore } from "../src/store/sqlite-store.ts";
import { ThreadedSqliteStore } from "../src/store/threaded-store.ts";
import { MongoStore } from "../src/store/mongo-store.ts";
import { GroupCommitter } from "../src/store/group-commit.ts";
import type { MessageStore } from "../src/store/types.ts";

const { values: args } = parseArgs({
  // `pnpm bench:store -- --duration 5` passes the `--` through.
  args: process.argv.slice(2).filter((a) => a !== "--"),
  options: {
    duration: { type: "string", default: process.env.BENCH_DURATION_S ?? "8" },
    producers: { type: "string", default: "100" },
    conversations: { type: "string", default: "50" },
    "batch-max": { type: "string", default: "512" },
    sync: { type: "string", default: "FULL" },
    stores: { type: "string", default: "sqlite,sqlite-threaded,mongodb" },
    "client-ids": { type: "string", default: "yes" },
  },
});
const durationMs = Number(args.duration) * 1000;
const producers = Number(args.producers);
const conversations = Number(args.conversations);
const batchMax = Number(args["batch-max"]);
const sync = args.sync === "NORMAL" ? "NORMAL" : "FULL";
const wanted = new Set(args.stores.split(","));
const clientIds = args["client-ids"] !== "no";
const mongoUrl = process.env.MONGO_URL?.trim() || undefined;
const wc = process.env.MONGO_WRITE_CONCERN?.trim() || "majority";
const writeConcern: "majority" | number = wc === "majority" ? "majority" : Number(wc);
if (!(durationMs > 0 && producers > 0 && conversations > 0 && batchMax > 0)) throw new Error("bad arguments: durations and counts must be positive");

interface Target {
  name: string;
  open(): Promise<{ store: MessageStore; cleanup(): Promise<void> }>;
}

const targets: Target[] = [];
if (wanted.has("sqlite")) {
  targets.push({
    name: `SQLite (synchronous=${sync})`,
    async open() {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "chat-store-bench-"));
      const store = new SqliteStore({ dataDir, synchronous: sync });
      return { store, cleanup: async () => fs.rmSync(dataDir, { recursive: true, force: true }) };
    },
  });
}
if (wanted.has("sqlite-threaded")) {
  targets.push({
    name: `SQLite in a worker thread, as the node runs it (synchronous=${sync})`,
    async open() {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "chat-store-bench-"));
      const store = new ThreadedSqliteStore({ dataDir, synchronous: sync });
      return { store, cleanup: async () => fs.rmSync(dataDir, { recursive: true, force: true }) };
    },
  });
}
if (wanted.has("mongodb")) {
  if (!mongoUrl) console.error("MongoDB: SKIPPED, MONGO_URL is not set (a replica set URL, e.g. mongodb://localhost:27017/?replicaSet=rs0)");
  else {
    targets.push({
      name: `MongoDB (w=${writeConcern})`,
      async open() {
        const dbName = `chat_bench_${randomUUID().slice(0, 8)}`;
        const store = new MongoStore({ url: mongoUrl, dbName, writeConcern });
        return {
          store,
          async cleanup() {
            const c = new MongoClient(mongoUrl);
            await c.db(dbName).dropDatabase().finally(() => c.close());
          },
        };
      },
    });
  }
}

interface Result {
  committed: number;
  perSec: number;
  p50: number;
  p99: number;
  failed: number;
  /** The process's CPU (every thread: the store's worker included) per committed message, over the producers' window. */
  cpuUsPerMessage: number;
  /** Messages per commit (batch). */
  perCommit: number;
}

const percentile = (sorted: Float64Array, p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]! : NaN);

async function run(target: Target, groupBatchMax: number): Promise<Result> {
  const { store, cleanup } = await target.open();
  try {
    await store.init();
    const convIds = Array.from({ length: conversations }, (_, i) => `bench-${i}`);
    const now = new Date().toISOString();
    for (const id of convIds) await store.createConversation({ id, title: id, members: ["u0", "u1", "u2", "u3"], createdAt: now });
    let commits = 0;
    const append = store.appendBatch.bind(store);
    store.appendBatch = (batch) => (commits++, append(batch));
    const committer = new GroupCommitter(store, { batchMax: groupBatchMax, queueMax: 20_000 });
    const latencies: number[] = [];
    let failed = 0;
    const deadline = performance.now() + durationMs;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const producer = async (p: number) => {
      for (let n = 0; performance.now() < deadline; n++) {
        const start = performance.now();
        try {
          await committer.append({
            id: randomUUID(), conversationId: convIds[Math.floor(Math.random() * conversations)]!, senderId: `u${p % 4}`,
            message: `message ${n} from producer ${p}`, timestamp: new Date().toISOString(),
            ...(clientIds ? { clientMessageId: newClientMessageId() } : {}),
          });
          latencies.push(performance.now() - start);
        } catch {
          failed++;
        }
      }
    };
    await Promise.all(Array.from({ length: producers }, (_, p) => producer(p)));
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    await committer.close();
    const sorted = Float64Array.from(latencies).sort();
    return { committed: latencies.length, perSec: latencies.length / elapsed, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), failed,
      cpuUsPerMessage: (cpu.user + cpu.system) / Math.max(1, latencies.length), perCommit: latencies.length / Math.max(1, commits) };
  } finally {
    await store.close();
    await cleanup();
  }
}

const fmt = (n: number, d = 0) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });

console.error(
  `store bench: ${producers} producers, ${conversations} conversations, ${durationMs / 1000} s per run, group commit batchMax ${batchMax}, ` +
    `${clientIds ? "every message with a clientMessageId (time-ordered, as the SDK makes them)" : "no clientMessageId"}; ` +
    `${os.cpus().length} CPUs, Node ${process.version}, ${os.type()} ${os.release()}`,
);
const rows: string[] = [];
for (const t of targets) {
  console.error(`${t.name}: with group commit...`);
  const group = await run(t, batchMax);
  console.error(`${t.name}: one write per message...`);
  const single = await run(t, 1);
  const row = (mode: string, r: Result, ratio: string) =>
    `| ${t.name} | ${mode} | ${fmt(r.perSec)} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${fmt(r.perCommit, 1)} | ${fmt(r.cpuUsPerMessage, 1)} | ${fmt(r.committed)} | ${r.failed} | ${ratio} |`;
  rows.push(row(`group commit (batchMax ${batchMax})`, group, `${fmt(group.perSec / single.perSec, 1)}×`));
  rows.push(row("one write per message (batchMax 1)", single, "1.0×"));
}
console.log(`\n| store | mode | committed msg/s | p50 ms | p99 ms | messages per commit | CPU µs per message | committed | failed | vs one write |`);
console.log(`| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`);
for (const r of rows) console.log(r);
