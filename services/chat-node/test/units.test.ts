/** Fast tests of the pieces with logic of their own; the behaviour users see is tested on a real node. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { tempDir } from "@chat/test-kit";
import { TokenBuckets } from "../src/rate-limit.ts";
import { TypingTracker } from "../src/core/typing.ts";
import { GroupCommitter } from "../src/store/group-commit.ts";
import fs from "node:fs";
import path from "node:path";
import { SqliteStore } from "../src/store/sqlite-store.ts";
import { ThreadedSqliteStore } from "../src/store/threaded-store.ts";
import { StoreUnavailableError, type NewMessage } from "../src/store/types.ts";
import { createMetrics } from "../src/metrics.ts";

describe("token buckets", () => {
  it("allow the burst, then refill at the rate", () => {
    let t = 0;
    const b = new TokenBuckets({ perSec: 2, burst: 3 }, () => t);
    assert.deepEqual([b.take("u"), b.take("u"), b.take("u")], [0, 0, 0]);
    assert.ok(b.take("u") > 0, "empty after the burst");
    t += 500;
    assert.equal(b.take("u"), 0, "one token after half a second at 2/s");
    assert.ok(b.take("u") > 0);
    t += 10_000;
    b.sweep();
    assert.equal(b.size, 0, "full buckets are forgotten");
  });
});

describe("typing tracker", () => {
  it("emits transitions only, one timer per user and conversation", async () => {
    const events: string[] = [];
    const t = new TypingTracker(60, (c, u, on) => events.push(`${c}/${u}/${on}`));
    assert.equal(t.start("c", "u", "s1"), true);
    assert.equal(t.start("c", "u", "s1"), false);
    assert.equal(t.start("c", "u", "s2"), false);
    assert.equal(t.size, 1);
    await new Promise((r) => setTimeout(r, 150));
    assert.deepEqual(events, ["c/u/true", "c/u/false"]);
    t.start("c", "u", "s1");
    t.endBySession("c", "u", "s2");
    assert.equal(t.size, 1, "the leave of a socket that did not type in this window does not end it");
    assert.equal(t.end("c", "u"), true);
    assert.equal(t.end("c", "u"), false);
    t.close();
  });

  it("tracks every session of the user: the typing ends when the last one still typing goes", () => {
    const events: string[] = [];
    const t = new TypingTracker(60_000, (c, u, on) => events.push(`${c}/${u}/${on}`));
    t.start("c", "u", "tab1");
    t.start("c", "u", "tab2");
    t.endBySession("c", "u", "tab1");
    assert.deepEqual(events, ["c/u/true"], "the second tab still types");
    t.endBySession("c", "u", "tab2");
    assert.deepEqual(events, ["c/u/true", "c/u/false"], "the last tab's close ends it at once");
    t.close();
  });

  it("a send's end leaves alone typing refreshed after the send arrived", () => {
    const events: string[] = [];
    const t = new TypingTracker(60_000, (c, u, on) => events.push(`${c}/${u}/${on}`));
    const before = performance.timeOrigin + performance.now();
    t.start("c", "u", "s1");
    assert.equal(t.end("c", "u", before), false);
    assert.equal(t.end("c", "u", performance.timeOrigin + performance.now()), true);
    assert.deepEqual(events, ["c/u/true", "c/u/false"]);
    t.close();
  });
});

describe("group commit on the SQLite store", () => {
  const msg = (conversationId: string, n: number, clientMessageId?: string): NewMessage => ({
    id: `id-${conversationId}-${n}-${Math.random()}`,
    conversationId,
    senderId: "u",
    message: `m${n}`,
    timestamp: new Date().toISOString(),
    ...(clientMessageId ? { clientMessageId } : {}),
  });

  it("gathers concurrent sends into batches, with gapless seq per conversation", async () => {
    const store = new SqliteStore({ dataDir: tempDir() });
    await store.init();
    for (const id of ["a", "b"]) await store.createConversation({ id, title: "", members: ["u"], createdAt: new Date().toISOString() });
    const metrics = createMetrics("unit");
    const gc = new GroupCommitter(store, { batchMax: 64, queueMax: 10_000, metrics });
    const results = await Promise.all(Array.from({ length: 400 }, (_, i) => gc.append(msg(i % 2 ? "a" : "b", i, i % 10 === 0 ? `k${i % 20}` : undefined))));
    const batches = (await metrics.storeBatchSize.get()).values.find((v) => v.metricName === "chat_store_batch_size_count")?.value ?? 0;
    assert.ok(batches > 0 && batches < 400, `batched: ${batches} commits for 400 sends`);
    for (const c of ["a", "b"]) {
      const seqs = results.filter((r) => r.message.conversationId === c && !r.duplicate).map((r) => r.message.seq).sort((x, y) => x - y);
      assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1));
    }
    const dups = results.filter((r) => r.duplicate);
    for (const d of dups) assert.ok(results.some((r) => !r.duplicate && r.message.id === d.message.id), "a duplicate answers the original");
    await gc.close();
    await store.close();
  });

  it("bounds its queue: past queueMax a send fails at once with StoreUnavailableError", async () => {
    const store = new SqliteStore({ dataDir: tempDir() });
    await store.init();
    await store.createConversation({ id: "a", title: "", members: ["u"], createdAt: new Date().toISOString() });
    const gc = new GroupCommitter(store, { batchMax: 8, queueMax: 10 });
    const outcomes = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => gc.append(msg("a", i))));
    const rejected = outcomes.filter((o) => o.status === "rejected");
    assert.equal(rejected.length, 40);
    for (const r of rejected) assert.ok((r as PromiseRejectedResult).reason instanceof StoreUnavailableError);
    const page = await store.listMessages("a", { limit: 200 });
    assert.equal(page.messages.length, 10, "only the accepted sends are stored");
    await gc.close();
    await store.close();
  });

  it("the store thread checkpoints between batches: the WAL stays small, and every message is kept", async () => {
    // 1000 messages in 100 batches over 10 conversations, checkpointed every 100 messages or left to SQLite (10,000 pages).
    const walBytes = async (deferredCheckpointMessages: number) => {
      const dataDir = tempDir();
      const store = new ThreadedSqliteStore({ dataDir, deferredCheckpointMessages });
      await store.init();
      const convs = Array.from({ length: 10 }, (_, i) => `c${i}`);
      for (const id of convs) await store.createConversation({ id, title: "", members: ["u"], createdAt: new Date().toISOString() });
      for (let b = 0; b < 100; b++) await store.appendBatch(Array.from({ length: 10 }, (_, i) => msg(convs[i]!, b * 10 + i, `k${b}-${i}`)));
      const size = fs.statSync(path.join(dataDir, "chat.db-wal")).size;
      for (const id of convs) assert.deepEqual((await store.listMessages(id, { after: 0, limit: 200 })).messages.map((m) => m.seq), Array.from({ length: 100 }, (_, i) => i + 1));
      await store.close();
      return size;
    };
    const deferred = await walBytes(100);
    const inCommit = await walBytes(0);
    assert.ok(deferred * 4 < inCommit, `WAL ${deferred} bytes with a checkpoint every 100 messages, ${inCommit} without`);
  });

  it("rejects everything when the store is closed, and acknowledges nothing", async () => {
    const store = new SqliteStore({ dataDir: tempDir() });
    await store.init();
    await store.createConversation({ id: "a", title: "", members: ["u"], createdAt: new Date().toISOString() });
    await store.close();
    const gc = new GroupCommitter(store, { batchMax: 8, queueMax: 100 });
    await assert.rejects(gc.append(msg("a", 1)), StoreUnavailableError);
  });
});
