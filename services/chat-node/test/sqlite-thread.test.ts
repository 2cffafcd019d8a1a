/**
 * SQLITE_THREAD=main: the embedded store commits on the node's main thread instead of its worker
 * thread (docs/stores.md). The contract must not notice: every acknowledged message stored once,
 * seq gap-free, broadcast after its commit, also across `kill -9` and restarts; and the file, held
 * alone, is refused to a second process at start-up rather than stalling the first one mid-send.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { NODE_MAIN, TEST_SECRET, chatNodeOptions, closeAllSockets, emitAck, eventually, freePort, startNode, startProcess, stopAll, tempDir, waitForEvent } from "@chat/test-kit";
import type { MessageData, SendAck } from "@chat/protocol";
import { allMessages, createConversation, joined, metricValue } from "./helpers.ts";

const MAIN = { SQLITE_THREAD: "main", RATE_LIMIT_DISABLED: "1" };


describe("SQLITE_THREAD=main", () => {
  after(async () => {
    closeAllSockets();
    await stopAll();
  });

  it("sends are acknowledged, broadcast with seq 1..N and kept across a restart; the store has no worker thread", async () => {
    const dataDir = tempDir();
    const node = await startNode({ ...MAIN, DATA_DIR: dataDir });
    const threads = fs.readdirSync(`/proc/${node.pid}/task`).length;
    const conv = await createConversation(node.url, "alice", ["bob"]);
    const alice = await joined(node.url, "alice", conv.id);
    const bob = await joined(node.url, "bob", conv.id);
    const seen: MessageData[] = [];
    bob.on("newMessage", (m: MessageData) => seen.push(m));
    const acks = await Promise.all(Array.from({ length: 50 }, (_, i) => emitAck<SendAck>(alice, "sendMessage", { conversationId: conv.id, message: `m${i}`, clientMessageId: `c${i}` })));
    assert.ok(acks.every((a) => a.ok), "every send acknowledged");
    await eventually(() => seen.length === 50, 10_000, "bob sees all 50 live");
    assert.deepEqual(seen.map((m) => m.seq), Array.from({ length: 50 }, (_, i) => i + 1));
    const again = await emitAck<SendAck>(alice, "sendMessage", { conversationId: conv.id, message: "m0", clientMessageId: "c0" });
    assert.ok(again.ok && again.duplicate === true && again.message.seq === 1, "a retried clientMessageId answers the original");
    assert.equal(await metricValue(node.url, "chat_store_up"), 1);
    // The worker-thread default runs one more thread than this (checked against the same build).
    const dflt = await startNode({ RATE_LIMIT_DISABLED: "1" });
    await createConversation(dflt.url, "alice", ["bob"]);
    assert.ok(fs.readdirSync(`/proc/${dflt.pid}/task`).length > threads, "SQLITE_THREAD=worker has the store's thread, main has not");
    await dflt.stop();
    assert.equal(await node.stop("SIGTERM"), 0);
    const back = await startNode({ ...MAIN, DATA_DIR: dataDir });
    const kept = await allMessages(back.url, "bob", conv.id);
    assert.deepEqual(kept.map((m) => [m.seq, m.id, m.message]), seen.map((m) => [m.seq, m.id, m.message]), "history after the restart is what was broadcast");
    await back.stop();
  });

  it("kill -9 during a burst: every acknowledged message is stored once, seq has no gap, and retries find their originals", async () => {
    const dataDir = tempDir();
    const node = await startNode({ ...MAIN, DATA_DIR: dataDir });
    const conv = await createConversation(node.url, "alice", ["bob"]);
    const sender = await joined(node.url, "alice", conv.id);
    const closed = waitForEvent<string>(sender, "disconnect", { timeoutMs: 15_000 });
    const acked = new Map<string, MessageData>();
    let i = 0;
    let stop = false;
    const pump = (async () => {
      while (!stop && i < 5000) {
        await Promise.all(Array.from({ length: 20 }, () => {
          const n = i++;
          return emitAck<SendAck>(sender, "sendMessage", { conversationId: conv.id, message: `burst ${n}`, clientMessageId: `b${n}` }, 3_000).then(
            (a) => { if (a.ok) acked.set(`b${n}`, a.message); },
            () => {},
          );
        }));
      }
    })();
    await eventually(() => acked.size >= 300, 20_000, "300 acknowledged sends");
    node.proc.kill("SIGKILL");
    await closed;
    stop = true;
    await pump;
    const sent = i;
    const restarted = await startNode({ ...MAIN, DATA_DIR: dataDir });
    const stored = await allMessages(restarted.url, "bob", conv.id);
    assert.deepEqual(stored.map((m) => m.seq), Array.from({ length: stored.length }, (_, k) => k + 1), "seq 1..N, no gap, no repeat");
    const byCmid = new Map(stored.map((m) => [m.clientMessageId!, m]));
    assert.equal(byCmid.size, stored.length, "no clientMessageId stored twice");
    for (const [cmid, m] of acked) assert.equal(byCmid.get(cmid)?.id, m.id, `acknowledged ${cmid} is stored as acknowledged`);
    // Every send retried with its clientMessageId: the stored ones answer their original, the rest are stored now, once.
    const retry = await joined(restarted.url, "alice", conv.id);
    for (let n = 0; n < sent; n += 97) {
      const a = await emitAck<SendAck>(retry, "sendMessage", { conversationId: conv.id, message: `burst ${n}`, clientMessageId: `b${n}` });
      assert.ok(a.ok, `retry of b${n}`);
      if (byCmid.has(`b${n}`)) assert.ok(a.duplicate && a.message.id === byCmid.get(`b${n}`)!.id, `b${n} answers its original`);
    }
    const after = await allMessages(restarted.url, "bob", conv.id);
    assert.equal(new Set(after.map((m) => m.clientMessageId)).size, after.length, "still no clientMessageId twice");
    assert.deepEqual(after.map((m) => m.seq), Array.from({ length: after.length }, (_, k) => k + 1));
  });

  it("a second process on the same DATA_DIR is refused at start-up, and the first keeps serving", async () => {
    const dataDir = tempDir();
    const first = await startNode({ ...MAIN, DATA_DIR: dataDir });
    const port = await freePort();
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, HOST: "127.0.0.1", PORT: String(port), JWT_SECRET: TEST_SECRET, DATA_DIR: dataDir, SQLITE_THREAD: "main", LOG_LEVEL: "info" };
    for (const thread of ["main", "worker"]) {
      const second = startProcess(process.execPath, [NODE_MAIN], { env: { ...env, SQLITE_THREAD: thread, NODE_OPTIONS: chatNodeOptions(undefined) } });
      // busy_timeout (10 s) first: the lock might have been a passing one.
      const code = await Promise.race([second.exited.then((e) => e.code), new Promise<string>((r) => setTimeout(() => r("still running after 40 s"), 40_000).unref())]);
      if (code === "still running after 40 s") await second.stop("SIGKILL");
      assert.equal(code, 78, `SQLITE_THREAD=${thread} beside a main-thread store exits 78 (EX_CONFIG): ${second.output().slice(-2000)}`);
      assert.match(second.output(), /DATA_DIR .* is in use by another process/);
    }
    const conv = await createConversation(first.url, "alice", ["bob"]);
    const alice = await joined(first.url, "alice", conv.id);
    const ack = await emitAck<SendAck>(alice, "sendMessage", { conversationId: conv.id, message: "still here" });
    assert.ok(ack.ok && ack.message.seq === 1);
  });
});
