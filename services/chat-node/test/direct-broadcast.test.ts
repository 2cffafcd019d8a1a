/**
 * Broadcasts written straight to each WebSocket's TCP socket (transport/socket/patches/direct-broadcast.ts) must be
 * indistinguishable from Socket.IO's own path: every member gets every message once, in `seq`
 * order, whatever its transport, including a member whose transport upgrades from long-polling to
 * WebSocket in the middle of the burst and a sender whose own acks Engine.IO is holding. The metric
 * shows which path the frames took.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Server } from "socket.io";
import { io as ioClient } from "socket.io-client";
import { directWriteCount, installDirectBroadcast } from "../src/transport/socket/patches/direct-broadcast.ts";
import { closeAllSockets, collect, connectUser, emitAck, eventually, startNode, stopAll, type ChatSocket } from "@chat/test-kit";
import type { JoinAck, MessageData, SendAck } from "@chat/protocol";
import { createConversation, joined, metricValue } from "./helpers.ts";

const N = 300;
const BURST = 20;


describe("broadcasts past Engine.IO", () => {
  after(async () => {
    closeAllSockets();
    await stopAll();
  });

  for (const direct of [true, false]) {
    it(`${direct ? "direct writes" : "BROADCAST_DIRECT_WRITE=0"}: WebSocket, long-polling and upgrading members each get ${N} pipelined sends once, in seq order`, async () => {
      const node = await startNode({ RATE_LIMIT_DISABLED: "1", BROADCAST_DIRECT_WRITE: direct ? "1" : "0" });
      const conv = await createConversation(node.url, "alice", ["bob", "carol", "dave"]);
      const alice = await joined(node.url, "alice", conv.id);
      const bob = await joined(node.url, "bob", conv.id);
      const carol = await joined(node.url, "carol", conv.id, { transports: ["polling"] });
      const atAlice = collect<MessageData>(alice, "newMessage");
      const atBob = collect<MessageData>(bob, "newMessage");
      const atCarol = collect<MessageData>(carol, "newMessage");

      // alice pipelines her sends in bursts; dave connects on long-polling during them, joins and
      // upgrades to WebSocket while the room is busy.
      const answered: SendAck[] = [];
      let daveReady: Promise<{ dave: ChatSocket; atDave: { items: MessageData[] } }> | undefined;
      for (let b = 0; b < N / BURST; b++) {
        const burst = Array.from({ length: BURST }, (_, k) => {
          const i = b * BURST + k;
          return emitAck<SendAck>(alice, "sendMessage", { conversationId: conv.id, message: `m${i}`, clientMessageId: `c${i}` }, 20_000);
        });
        daveReady ??= (async () => {
          const dave = await connectUser(node.url, "dave", { transports: ["polling", "websocket"] });
          const atDave = collect<MessageData>(dave, "newMessage");
          const ack = await emitAck<JoinAck>(dave, "joinConversation", { conversationId: conv.id });
          assert.ok(ack.ok, "dave joined");
          return { dave, atDave };
        })();
        answered.push(...(await Promise.all(burst)));
      }
      const { dave, atDave } = await daveReady!;
      assert.ok(answered.every((a) => a.ok), "every send acknowledged");
      const seqs = answered.map((a) => (a.ok ? a.message.seq : 0));
      assert.deepEqual(seqs, Array.from({ length: N }, (_, i) => i + 1), "acks in send order, consecutive seq");

      await eventually(() => [atAlice, atBob, atCarol].every((c) => c.items.length >= N) && atDave.items.at(-1)?.seq === N, 20_000, `${N} messages at each member`);
      for (const [who, got] of [["alice", atAlice], ["bob", atBob], ["carol", atCarol]] as const) {
        assert.equal(got.items.length, N, `${who}: no duplicates`);
        assert.deepEqual(got.items.map((m) => m.seq), seqs, `${who}: seq order`);
        assert.deepEqual(got.items.map((m) => m.message), seqs.map((q) => `m${q - 1}`), `${who}: the texts`);
      }
      // dave sees everything from some point on: no gap, no duplicate, in order.
      const first = atDave.items[0]?.seq ?? N + 1;
      assert.deepEqual(atDave.items.map((m) => m.seq), seqs.slice(first - 1), "dave: a gap-free suffix in seq order");
      assert.equal(dave.io.engine.transport.name, "websocket", "dave upgraded");

      const written = await metricValue(node.url, "chat_broadcast_direct_writes_total");
      const fanout = await metricValue(node.url, "chat_fanout_deliveries_total");
      assert.equal(fanout, 3 * N + atDave.items.length);
      if (direct) {
        // bob's N frames at least went straight to TCP; carol's N (long-polling) cannot have.
        assert.ok(written >= N, `direct writes ${written} >= ${N}`);
        assert.ok(written <= 3 * N + 10, `direct writes ${written} leave out carol's long-polling frames`);
      } else {
        assert.equal(written, 0);
      }
      for (const s of [alice, bob, carol, dave]) s.disconnect();
      await node.stop();
    });
  }

  it("a broadcast never overtakes packets Engine.IO is still holding for the socket", async () => {
    installDirectBroadcast();
    const server = http.createServer();
    const io = new Server(server);
    io.on("connection", (socket) => {
      void socket.join("r");
      socket.on("go", () => {
        // The first emit is handed to ws and leaves the transport unwritable until its write
        // callback; the second waits in Engine.IO's buffer, so the broadcasts after it must too.
        socket.emit("e", 1);
        socket.emit("e", 2);
        io.to("r").emit("e", 3);
        io.to("r").emit("e", 4);
        socket.emit("e", 5);
      });
      socket.on("alone", () => io.to("r").emit("e", 6));
      socket.on("sizes", (sizes: number[]) => {
        for (const n of sizes) io.to("r").emit("text", "é".repeat(n));
      });
      socket.on("binary", () => io.to("r").emit("bin", { label: "b", bytes: Buffer.from([0, 1, 2, 255]) }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const client = ioClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { transports: ["websocket"], reconnection: false, forceNew: true });
    try {
      const got: number[] = [];
      client.on("e", (n: number) => got.push(n));
      await new Promise<void>((resolve, reject) => {
        client.once("connect", resolve);
        client.once("connect_error", reject);
      });
      for (let round = 0; round < 20; round++) client.emit("go");
      await eventually(() => got.length === 100, 5000, "100 packets");
      assert.deepEqual(got, Array.from({ length: 20 }, () => [1, 2, 3, 4, 5]).flat());

      // With nothing held, a broadcast goes straight to the TCP socket, and arrives.
      const before = directWriteCount();
      client.emit("alone");
      await eventually(() => got.length === 101, 5000, "the lone broadcast");
      assert.equal(got[100], 6);
      assert.equal(directWriteCount(), before + 1);

      // Frames of every header length (7-bit, 16-bit and 64-bit payload lengths, RFC 6455 §5.2).
      // The payload is `42["text","…"]`: 13 bytes and 2 per "é", so 56 → 125 bytes, 57 → 127, 32,761 → 65,535, 32,762 → 65,537.
      const sizes = [0, 56, 57, 32_761, 32_762, 40_000];
      const texts: string[] = [];
      client.on("text", (t: string) => texts.push(t));
      client.emit("sizes", sizes);
      await eventually(() => texts.length === sizes.length, 5000, "every size");
      assert.deepEqual(texts.map((t) => t.length), sizes);
      assert.ok(texts.every((t) => /^é*$/.test(t)));

      // A binary broadcast (several Engine.IO packets) takes Socket.IO's path, its bytes intact.
      const bin = new Promise<{ label: string; bytes: ArrayBuffer | Uint8Array }>((resolve) => client.once("bin", resolve));
      client.emit("binary");
      const b = await bin;
      assert.equal(b.label, "b");
      assert.deepEqual([...new Uint8Array(b.bytes)], [0, 1, 2, 255]);
    } finally {
      client.disconnect();
      await io.close();
    }
  });
});

