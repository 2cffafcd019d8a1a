/**
 * A client that stops reading is cut once more than SOCKET_MAX_OUTGOING_BYTES waits for it; the
 * room's other members get every message meanwhile, and the cut client finds every message by
 * `seq` afterwards (nothing is lost: everything was stored before it was broadcast).
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Socket as TcpSocket } from "node:net";
import { closeAllSockets, collect, emitAck, eventually, startNode, stopAll, type ChatSocket } from "@chat/test-kit";
import type { MessageData, SendAck } from "@chat/protocol";
import { createConversation, history, joined, metricValue } from "./helpers.ts";

const LIMIT = 256 * 1024;
const BODY = "x".repeat(3900);
const BURST = 50;
/** At most 40 MB sent: the kernel's socket buffers on loopback hold a few MB before the node's queue grows. */
const MAX_BURSTS = 200;


/** The TCP socket under socket.io-client's WebSocket transport (engine.io-client on `ws`). */
function tcpOf(s: ChatSocket): TcpSocket {
  const tcp = (s.io.engine.transport as unknown as { ws?: { _socket?: TcpSocket } }).ws?._socket;
  assert.ok(tcp, "a WebSocket transport over TCP");
  return tcp;
}

describe("a client that stops reading", () => {
  after(async () => {
    closeAllSockets();
    await stopAll();
  });

  it("is cut past SOCKET_MAX_OUTGOING_BYTES while the others get everything, and finds every message by seq", async () => {
    const node = await startNode({ RATE_LIMIT_DISABLED: "1", SOCKET_MAX_OUTGOING_BYTES: String(LIMIT) });
    const conv = await createConversation(node.url, "alice", ["bob", "carol"]);
    const alice = await joined(node.url, "alice", conv.id);
    const bob = await joined(node.url, "bob", conv.id);
    const carol = await joined(node.url, "carol", conv.id);
    const atBob = collect<MessageData>(bob, "newMessage");
    const atCarol = collect<MessageData>(carol, "newMessage");
    assert.equal(await metricValue(node.url, "chat_slow_consumers_cut_total"), 0);

    // carol's client stops reading: the kernel's buffers fill, then the node's queue for her grows.
    tcpOf(carol).pause();
    let sent = 0;
    let cut = 0;
    for (let b = 0; b < MAX_BURSTS && cut === 0; b++) {
      const acks = await Promise.all(
        Array.from({ length: BURST }, () => emitAck<SendAck>(alice, "sendMessage", { conversationId: conv.id, message: BODY, clientMessageId: `m${sent++}` }, 20_000)),
      );
      assert.ok(acks.every((a) => a.ok), "every send acknowledged");
      if (b % 5 === 4) cut = await metricValue(node.url, "chat_slow_consumers_cut_total");
    }
    await eventually(async () => (await metricValue(node.url, "chat_slow_consumers_cut_total")) > 0, 5000, "the slow client cut");
    assert.equal(await metricValue(node.url, "chat_slow_consumers_cut_total"), 1, "only carol was cut");

    // bob, reading all along, got every message in order.
    await eventually(() => atBob.items.length === sent, 20_000, `bob's ${sent} messages`);
    assert.deepEqual(atBob.items.map((m) => m.seq), Array.from({ length: sent }, (_, i) => i + 1));

    // carol reads again: what was in the kernel's buffers arrives, then the connection is gone.
    tcpOf(carol).resume();
    await eventually(() => !carol.connected, 10_000, "carol's client sees the cut");
    const seen = atCarol.items.map((m) => m.seq);
    assert.ok(seen.length < sent, `carol got ${seen.length} of ${sent} before the cut`);
    assert.deepEqual(seen, Array.from({ length: seen.length }, (_, i) => i + 1), "what carol got is in order, without a gap");

    // Everything after her last seq is there for her to page.
    const rest = await history(node.url, "carol", conv.id, `?after=${seen.length}&limit=100`);
    assert.equal(rest.messages[0]?.seq, seen.length + 1);
    assert.equal(rest.messages.length, Math.min(100, sent - seen.length));

    // The node serves on: alice's next send is delivered to bob.
    const ack = await emitAck<SendAck>(alice, "sendMessage", { conversationId: conv.id, message: "still here" });
    assert.ok(ack.ok);
    await eventually(() => atBob.items.at(-1)?.message === "still here", 5000, "delivery after the cut");
    await node.stop();
  });
});
