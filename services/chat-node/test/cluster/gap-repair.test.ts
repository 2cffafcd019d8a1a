/**
 * Gap repair on the node (issue 18): a client written exactly as the seed describes (join without
 * an acknowledgement or `sinceSeq`, listen for `newMessage`, never fetch history) ends with every
 * message, once, after a Redis outage during which another node took sends, and after a message
 * was stored by a node that never broadcast it (it died between its commit and its publish).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { io } from "socket.io-client";
import type { MessageData, SendAck } from "@chat/protocol";
import { eventually, mintToken } from "@chat/test-kit";
import { SqliteStore } from "../../src/store/sqlite-store.ts";
import { CLUSTER_ENV, clusterPerSuite, cookieFor, createConversation, type Member } from "./helpers.ts";

/** The seed's client: no acks, no catch-up; what it shows is what the node delivered. */
async function seedClient(lbUrl: string, userId: string, conversationId: string, nodeId: string) {
  const received: MessageData[] = [];
  const socket = io(lbUrl, { auth: { token: await mintToken(userId) }, transports: ["websocket"], forceNew: true, extraHeaders: { cookie: await cookieFor(lbUrl, nodeId) } });
  socket.on("newMessage", (m: MessageData) => received.push(m));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("connect_error", reject);
  });
  socket.emit("joinConversation", { conversationId });
  // No ack to wait for: the join is in once the room shows the socket's presence to a listener; a short wait suffices here.
  await new Promise((r) => setTimeout(r, 300));
  return { socket, received, seqs: () => received.map((m) => m.seq) };
}

async function send(m: Member, text: string, clientMessageId = randomUUID()): Promise<MessageData> {
  const ack = (await m.socket.timeout(5000).emitWithAck("sendMessage", { conversationId: m.conversationId, message: text, clientMessageId })) as SendAck;
  assert.ok(ack.ok, JSON.stringify(ack));
  return ack.message;
}

const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe("gap repair on the node (2 nodes, one Redis)", () => {
  const fx = clusterPerSuite({ nodes: 2, redisAdapter: "classic", env: CLUSTER_ENV });

  test("a seed-like client on the other node gets every message sent during a Redis outage, once, without asking", async () => {
    const conv = await createConversation(fx.cluster.url, "alice", ["alice", "bob"]);
    const alice = await fx.join("alice", conv, "node-1");
    const bob = await seedClient(fx.cluster.url, "bob", conv, "node-2");
    try {
      await send(alice, "before");
      await eventually(() => bob.received.length === 1, 5000, "bob to get the first message live");
      await fx.cluster.redis.stop();
      await eventually(async () => (await fetch(`${fx.cluster.nodes[0]!.url}/readyz`)).status === 503, 10_000, "node 1 to see Redis away");
      for (let i = 1; i <= 10; i++) await send(alice, `during ${i}`);
      assert.deepEqual(bob.seqs(), [1], "nothing crossed while Redis was away");
      await fx.cluster.redis.start();
      // No further send: the node itself must notice and deliver what its socket missed.
      await eventually(() => bob.received.length >= 11, 10_000, "bob's node to deliver what he missed");
      await new Promise((r) => setTimeout(r, 1500));
      assert.deepEqual(bob.seqs(), upTo(11), "every message, in seq order, once");
      assert.ok(bob.socket.connected, "bob was never disconnected");
      const metrics = await (await fetch(`${fx.cluster.nodes[1]!.url}/metrics`)).text();
      assert.match(metrics, /^chat_gap_repaired_total\{[^}]*\} 10$/m, "node 2 counts the 10 messages it repaired");
    } finally {
      bob.socket.disconnect();
    }
  });

  test("typing shown on another node ends after a Redis outage lost its false, and typing that goes on is shown again", async () => {
    const conv = await createConversation(fx.cluster.url, "alice", ["alice", "bob"]);
    const alice = await fx.join("alice", conv, "node-1");
    const bob = await fx.join("bob", conv, "node-2");
    const carol = await fx.join("alice", conv, "node-2");
    const shown = () => alice.typing.filter((t) => t.userId === "bob").map((t) => t.isTyping);
    await bob.socket.timeout(3000).emitWithAck("typing", { conversationId: conv });
    await eventually(() => shown().length === 1, 5000, "alice to see bob typing");
    await fx.cluster.redis.stop();
    // Bob's window (TYPING_TIMEOUT_MS 400 ms) lapses while Redis is away: its false cannot cross.
    await eventually(() => shown().at(-1) === false, 3000, "alice's node to end the typing it showed");
    assert.equal(carol.typing.filter((t) => t.userId === "bob").at(-1)?.isTyping, false, "bob's own node ended it for its sockets");
    await fx.cluster.redis.start();
    await eventually(async () => (await fetch(`${fx.cluster.nodes[0]!.url}/readyz`)).status === 200, 15_000, "node 1 ready again");
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(shown().at(-1), false, "no true stays after the outage");
    // Typing after the outage crosses again: one true, one false.
    const before = shown().length;
    await bob.socket.timeout(3000).emitWithAck("typing", { conversationId: conv });
    await eventually(() => shown().length === before + 2, 5000, "a new window to be shown and end");
    assert.deepEqual(shown().slice(before), [true, false]);
  });

  test("presence changes made during a Redis outage are announced to the other node once it is back", async () => {
    const conv = await createConversation(fx.cluster.url, "alice", ["alice", "bob", "dave"]);
    const alice = await fx.join("alice", conv, "node-1");
    const dave = await fx.join("dave", conv, "node-2");
    const seen = (userId: string) => alice.presence.filter((p) => p.userId === userId).map((p) => p.online);
    await eventually(() => seen("dave").length === 1, 5000, "alice to see dave online");
    await fx.cluster.redis.stop();
    await eventually(async () => (await fetch(`${fx.cluster.nodes[1]!.url}/readyz`)).status === 503, 10_000, "node 2 to see Redis away");
    const bob = await fx.join("bob", conv, "node-2");
    dave.close();
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual([seen("bob"), seen("dave")], [[], [true]], "nothing crossed while Redis was away");
    await fx.cluster.redis.start();
    await eventually(() => seen("bob").length === 1 && seen("dave").length === 2, 10_000, "alice to hear of bob's join and dave's leave");
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual([seen("bob"), seen("dave")], [[true], [true, false]], "each announced once");
    assert.ok(bob.socket.connected);
  });

  test("a message stored but never broadcast reaches the room once: by the retry of its send, or by the next message's gap", async () => {
    const conv = await createConversation(fx.cluster.url, "alice", ["alice", "bob"]);
    const alice = await fx.join("alice", conv, "node-1");
    const bob = await seedClient(fx.cluster.url, "bob", conv, "node-2");
    const store = new SqliteStore({ dataDir: fx.cluster.dataDir });
    try {
      await store.init();
      await send(alice, "first");
      await eventually(() => bob.received.length === 1, 5000, "bob to get the first message");
      // A node stored alice's send and died before broadcasting or answering it: her client retries it.
      const orphanId = randomUUID();
      const [stored] = await store.appendBatch([
        { id: randomUUID(), conversationId: conv, senderId: "alice", message: "orphan", timestamp: new Date().toISOString(), clientMessageId: orphanId },
      ]);
      assert.equal(stored!.message.seq, 2);
      const retried = (await alice.socket.timeout(5000).emitWithAck("sendMessage", { conversationId: conv, message: "orphan", clientMessageId: orphanId })) as SendAck;
      assert.ok(retried.ok && retried.duplicate === true && retried.message.seq === 2, JSON.stringify(retried));
      await eventually(() => bob.received.length === 2, 5000, "bob to get the retried original");
      // A second orphan nobody retries: the next live message shows the gap and the node fills it.
      await store.appendBatch([{ id: randomUUID(), conversationId: conv, senderId: "alice", message: "orphan 2", timestamp: new Date().toISOString() }]);
      await send(alice, "next");
      await eventually(() => bob.received.length === 4, 5000, "bob's node to fill the gap");
      await new Promise((r) => setTimeout(r, 1000));
      assert.deepEqual(bob.seqs().sort((a, b) => a - b), upTo(4), "each message once");
      assert.deepEqual(alice.contiguous(), 4);
    } finally {
      bob.socket.disconnect();
      await store.close();
    }
  });
});
