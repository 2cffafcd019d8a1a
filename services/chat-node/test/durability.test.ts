/** Messages survive restarts, shared files and SIGTERM: nothing acknowledged is lost, nothing duplicated. */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { DatabaseSync } from "node:sqlite";
import path from "node:path";
import { api, closeAllSockets, connectUser, emitAck, eventually, mintToken, sleep, startNode, stopAll, tempDir, waitForEvent } from "@chat/test-kit";
import type { MessageData, SendAck } from "@chat/protocol";
import { allMessages, createConversation, history, joined } from "./helpers.ts";


function assertGapless(messages: MessageData[]): void {
  assert.deepEqual(messages.map((m) => m.seq), Array.from({ length: messages.length }, (_, i) => i + 1), "seq 1..N, no gap, no repeat");
  assert.equal(new Set(messages.map((m) => m.id)).size, messages.length, "no duplicate id");
}

describe("durability", () => {
  after(async () => {
    closeAllSockets();
    await stopAll();
  });

  it("messages survive a node restart, and seq continues", async () => {
    const dataDir = tempDir();
    const first = await startNode({ DATA_DIR: dataDir, RATE_LIMIT_DISABLED: "1" });
    const conv = await createConversation(first.url, "alice", ["bob"]);
    const alice = await joined(first.url, "alice", conv.id);
    for (let i = 1; i <= 5; i++) assert.ok((await emitAck<SendAck>(alice, "sendMessage", { conversationId: conv.id, message: `keep ${i}` })).ok);
    assert.equal(await first.stop("SIGTERM"), 0);
    const second = await startNode({ DATA_DIR: dataDir, RATE_LIMIT_DISABLED: "1" });
    const kept = await history(second.url, "bob", conv.id);
    assert.deepEqual(kept.messages.map((m) => m.message), ["keep 1", "keep 2", "keep 3", "keep 4", "keep 5"]);
    const again = await joined(second.url, "alice", conv.id);
    const ack = await emitAck<SendAck>(again, "sendMessage", { conversationId: conv.id, message: "after restart" });
    assert.ok(ack.ok && ack.message.seq === 6);
  });

  it("two node processes writing to one conversation through the same DATA_DIR produce seq 1..N", async () => {
    const dataDir = tempDir();
    const env = { DATA_DIR: dataDir, RATE_LIMIT_DISABLED: "1" };
    const [n1, n2] = await Promise.all([startNode(env), startNode(env)]);
    const conv = await createConversation(n1.url, "alice", ["bob"]);
    const alice = await joined(n1.url, "alice", conv.id);
    const bob = await joined(n2.url, "bob", conv.id);
    const PER = 150;
    const send = (s: typeof alice, who: string) =>
      Promise.all(Array.from({ length: PER }, (_, i) => emitAck<SendAck>(s, "sendMessage", { conversationId: conv.id, message: `${who}${i}`, clientMessageId: `${who}-${i}` }, 20_000)));
    const [fromA, fromB] = await Promise.all([send(alice, "a"), send(bob, "b")]);
    const acked = [...fromA, ...fromB];
    assert.ok(acked.every((a) => a.ok), "every send acknowledged");
    const stored = await allMessages(n2.url, "alice", conv.id);
    assert.equal(stored.length, 2 * PER);
    assertGapless(stored);
    const ackedIds = new Set(acked.map((a) => (a.ok ? a.message.id : "")));
    assert.deepEqual(new Set(stored.map((m) => m.id)), ackedIds, "exactly the acknowledged messages");
  });

  it("SIGTERM during a burst of sends loses no acknowledged message, and exits 0", async () => {
    const dataDir = tempDir();
    const node = await startNode({ DATA_DIR: dataDir, RATE_LIMIT_DISABLED: "1", SHUTDOWN_TIMEOUT_MS: "8000" });
    const conv = await createConversation(node.url, "alice", ["bob"]);
    const sender = await joined(node.url, "alice", conv.id);
    const closed = waitForEvent<string>(sender, "disconnect", { timeoutMs: 15_000 });
    const acked: MessageData[] = [];
    const refused: string[] = [];
    let i = 0;
    let stop = false;
    const pump = (async () => {
      while (!stop && i < 5000) {
        const batch = Array.from({ length: 20 }, () => {
          const n = i++;
          return emitAck<SendAck>(sender, "sendMessage", { conversationId: conv.id, message: `burst ${n}`, clientMessageId: `b${n}` }, 10_000).then(
            (a) => (a.ok ? acked.push(a.message) : refused.push(a.error.code)),
            () => refused.push("no answer"),
          );
        });
        await Promise.all(batch);
      }
    })();
    await eventually(() => acked.length >= 200, 20_000, "200 acknowledged sends");
    const exit = node.stop("SIGTERM");
    assert.equal(await closed, "transport close", "the client sees a transport close, so it reconnects");
    stop = true;
    await pump;
    assert.equal(await exit, 0, "drained and exited 0");
    for (const code of refused) assert.ok(["UNAVAILABLE", "no answer"].includes(code), `refusals are retryable: ${code}`);
    const restarted = await startNode({ DATA_DIR: dataDir });
    const stored = await allMessages(restarted.url, "bob", conv.id);
    assertGapless(stored);
    const storedIds = new Set(stored.map((m) => m.id));
    const missing = acked.filter((m) => !storedIds.has(m.id));
    assert.deepEqual(missing, [], "every acknowledged message is stored");
    assert.ok(stored.length >= acked.length);
  });

  it("SIGTERM with HTTP connections that never finish a request still exits 0 (not the timeout's 1)", async () => {
    const node = await startNode({ DATA_DIR: tempDir(), SHUTDOWN_TIMEOUT_MS: "3000" });
    const { hostname, port } = new URL(node.url);
    const open = (first?: string) => {
      const s = net.connect(Number(port), hostname);
      s.on("error", () => undefined);
      if (first) s.write(first);
      return s;
    };
    // A pre-connect that sends nothing, a request whose body stops half-way, headers without their end.
    const sockets = [
      open(),
      open('POST /conversations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"members":'),
      open("GET /healthz HTTP/1.1\r\nHost: x\r\n"),
    ];
    await Promise.all(sockets.map((s) => new Promise((resolve) => (s.readyState === "open" ? resolve(undefined) : s.once("connect", resolve)))));
    await new Promise((r) => setTimeout(r, 200));
    try {
      assert.equal(await node.stop("SIGTERM"), 0, "drained and exited 0 within SHUTDOWN_TIMEOUT_MS");
    } finally {
      for (const s of sockets) s.destroy();
    }
  });

  it("SIGTERM while a REST send waits for its commit: the send is still answered 201 and stored, and the node exits 0", async () => {
    const dataDir = tempDir();
    const node = await startNode({ DATA_DIR: dataDir, SHUTDOWN_TIMEOUT_MS: "8000" });
    const conv = await createConversation(node.url, "alice", ["bob"]);
    // Another process holds SQLite's write lock (processes may share DATA_DIR): the send's commit waits for it.
    const holder = new DatabaseSync(path.join(dataDir, "chat.db"));
    holder.exec("PRAGMA busy_timeout = 5000");
    holder.exec("BEGIN EXCLUSIVE");
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      holder.exec("COMMIT");
      holder.close();
    };
    try {
      const send = api(node.url, await mintToken("alice")).post<MessageData>(`/conversations/${conv.id}/messages`, { message: "in flight at SIGTERM" });
      await sleep(300);
      const exit = node.stop("SIGTERM");
      // Past the drain and its one-second grace: a send still in its handler must hold the cut-off.
      await sleep(2500);
      release();
      const res = await send;
      assert.equal(res.status, 201, "the send in flight is answered");
      assert.equal(await exit, 0, "drained and exited 0");
      const restarted = await startNode({ DATA_DIR: dataDir });
      const stored = await allMessages(restarted.url, "bob", conv.id);
      assert.deepEqual(stored.map((m) => [m.id, m.message]), [[res.body.id, "in flight at SIGTERM"]]);
    } finally {
      release();
    }
  });

  it("a REST send its client gave up on does not hold a later drain until SHUTDOWN_TIMEOUT_MS", async () => {
    const dataDir = tempDir();
    const node = await startNode({ DATA_DIR: dataDir, SHUTDOWN_TIMEOUT_MS: "60000" });
    const conv = await createConversation(node.url, "alice", ["bob"]);
    const token = await mintToken("alice");
    // The send waits for SQLite's write lock, held by another process, and its client gives up.
    const holder = new DatabaseSync(path.join(dataDir, "chat.db"));
    holder.exec("PRAGMA busy_timeout = 5000");
    holder.exec("BEGIN EXCLUSIVE");
    const abort = new AbortController();
    const send = fetch(`${node.url}/conversations/${conv.id}/messages`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ message: "given up on" }),
      signal: abort.signal,
    }).catch((e: Error) => e.name);
    await sleep(300);
    abort.abort();
    assert.equal(await send, "AbortError");
    holder.exec("COMMIT");
    holder.close();
    await sleep(500);
    // A connection that never sends a request: the drain cuts it once no handler runs.
    const idle = net.connect(Number(new URL(node.url).port), "127.0.0.1");
    idle.on("error", () => undefined);
    await new Promise((resolve) => idle.once("connect", resolve));
    const t0 = Date.now();
    try {
      assert.equal(await node.stop("SIGTERM"), 0);
      // Not a speed check: a handler counted forever would hold the cut-off to the deadline (59.5 s).
      assert.ok(Date.now() - t0 < 30_000, `drained in ${Date.now() - t0} ms, not at the deadline`);
    } finally {
      idle.destroy();
    }
  });

  it("after SIGTERM a client reconnects on its own (to the next node of the same DATA_DIR)", async () => {
    const dataDir = tempDir();
    const a = await startNode({ DATA_DIR: dataDir });
    const conv = await createConversation(a.url, "alice", ["bob"]);
    const s = await connectUser(a.url, "alice", { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200 });
    const reasons: string[] = [];
    s.on("disconnect", (r) => reasons.push(r));
    const port = a.port;
    assert.equal(await a.stop("SIGTERM"), 0);
    const b = await startNode({ DATA_DIR: dataDir, PORT: String(port) });
    await eventually(() => s.connected, 10_000, "reconnection");
    assert.deepEqual(reasons, ["transport close"]);
    const ack = await emitAck<{ ok: boolean; lastSeq?: number }>(s, "joinConversation", { conversationId: conv.id, sinceSeq: 0 });
    assert.ok(ack.ok);
    await b.stop();
  });
});
