/**
 * Two users on different nodes, through nginx, with real Redis: messages, typing and presence
 * cross; seq stays 1..N while both nodes take concurrent sends to one conversation. Then sticky
 * long-polling from one client address spreads over the nodes and works. Both adapters, on one
 * Redis and on a real 3-shard Redis Cluster (Debian's redis-server in cluster mode).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { api, eventually, mintToken } from "@chat/test-kit";
import type { MessageData, SendAck } from "@chat/protocol";
import { CLUSTER_ENV, Member, clusterPerSuite, assertExactlyOnce, assertHistory, createConversation, history, redisClientNames } from "./helpers.ts";

const VARIANTS = [
  { adapter: "classic", shards: 0 },
  { adapter: "sharded", shards: 0 },
  { adapter: "classic", shards: 3 },
  { adapter: "sharded", shards: 3 },
] as const;

for (const { adapter, shards } of VARIANTS) {
  describe(`two nodes behind nginx (${adapter} adapter, ${shards ? `${shards}-shard Redis Cluster` : "one Redis"})`, () => {
    const fx = clusterPerSuite({ nodes: 2, redisAdapter: adapter, redisShards: shards, env: CLUSTER_ENV });

    test("messages, typing and presence cross nodes; concurrent sends keep seq 1..N", async () => {
      const conv = await createConversation(fx.cluster.url, "alice", ["alice", "bob"]);
      const alice = await fx.join("alice", conv, "node-1");
      const bob = await fx.join("bob", conv, "node-2");

      await eventually(() => alice.presence.some((p) => p.userId === "bob" && p.online && p.conversationId === conv), 5000, "alice to see bob online");
      const online = await api(fx.cluster.url, await mintToken("alice")).get<{ online: string[] }>(`/conversations/${conv}/presence`);
      assert.equal(online.status, 200);
      assert.deepEqual(online.body.online, ["alice", "bob"], "presence lists both users, whichever node answers");
      const limits = await api(fx.cluster.url, await mintToken("alice")).get<{ maxMessageLength?: unknown }>("/limits");
      assert.deepEqual([limits.status, typeof limits.body.maxMessageLength], [200, "number"], "GET /limits reaches a node through nginx");

      // Typing from node 2 reaches node 1: true once, then false once after TYPING_TIMEOUT_MS.
      await bob.socket.timeout(3000).emitWithAck("typing", { conversationId: conv });
      await bob.socket.timeout(3000).emitWithAck("typing", { conversationId: conv });
      await eventually(() => alice.typing.some((t) => t.userId === "bob" && !t.isTyping), 5000, "alice to see bob stop typing");
      assert.deepEqual(alice.typing.map((t) => t.isTyping), [true, false]);

      // A message from node 1 reaches node 2.
      const first = (await alice.socket.timeout(3000).emitWithAck("sendMessage", { conversationId: conv, message: "hi bob", clientMessageId: "a-0" })) as SendAck;
      assert.ok(first.ok);
      await eventually(() => bob.bySeq.get(1)?.message === "hi bob", 5000, "bob to receive alice's message");

      // Both nodes store concurrently into one conversation.
      const sends: Promise<SendAck>[] = [];
      for (let i = 1; i <= 100; i++) {
        sends.push(alice.socket.timeout(10_000).emitWithAck("sendMessage", { conversationId: conv, message: `a${i}`, clientMessageId: `a-${i}` }) as Promise<SendAck>);
        sends.push(bob.socket.timeout(10_000).emitWithAck("sendMessage", { conversationId: conv, message: `b${i}`, clientMessageId: `b-${i}` }) as Promise<SendAck>);
      }
      const acks = await Promise.all(sends);
      const acked: MessageData[] = [first.message];
      for (const a of acks) {
        assert.ok(a.ok, JSON.stringify(a));
        acked.push(a.message);
      }
      assert.deepEqual(acked.map((m) => m.seq).sort((x, y) => x - y), Array.from({ length: 201 }, (_, i) => i + 1));
      await eventually(() => alice.contiguous() === 201 && bob.contiguous() === 201, 10_000, "both to hold 201 messages");
      assertExactlyOnce(alice, acked, 201);
      assertExactlyOnce(bob, acked, 201);
      assertHistory(await history(fx.cluster.url, "bob", conv), acked);

      // Bob's last socket leaves: alice, on the other node, sees him offline.
      bob.close();
      await eventually(() => alice.presence.some((p) => p.userId === "bob" && !p.online), 5000, "alice to see bob offline");

      if (shards > 0) {
        // Both nodes talk to every shard through the cluster client, the sharded adapter with a shard subscriber each.
        for (const port of fx.cluster.redis.ports) {
          const names = redisClientNames(port);
          for (const node of ["node-1", "node-2"]) {
            assert.ok(names.includes(`chat:${node}:cmd`), `shard ${port} serves ${node}'s commands: ${names.join(" ")}`);
            if (adapter === "sharded") assert.ok(names.includes(`ioredis-cluster(ssubscriber):chat:${node}:sub`), `shard ${port} holds ${node}'s shard subscriber: ${names.join(" ")}`);
          }
        }
      }
    });

    test("one user typing from tabs on both nodes: one true, and one false after the last tab stops", async () => {
      const conv = await createConversation(fx.cluster.url, "alice", ["alice", "bob"]);
      const alice = await fx.join("alice", conv, "node-1");
      const tab1 = await fx.join("bob", conv, "node-1");
      const tab2 = await fx.join("bob", conv, "node-2");
      const seen = () => alice.typing.filter((t) => t.userId === "bob").map((t) => t.isTyping);
      const emit = (m: Member, event: "typing" | "stopTyping") => m.socket.timeout(3000).emitWithAck(event, { conversationId: conv });

      // Explicit ends: the first tab's stop is not the user's, the second's is.
      await emit(tab1, "typing");
      await emit(tab2, "typing");
      await eventually(() => seen().length === 1, 5000, "alice to see bob typing");
      await emit(tab1, "stopTyping");
      await new Promise((r) => setTimeout(r, 150));
      assert.deepEqual(seen(), [true], "bob still types in his other tab");
      await emit(tab2, "stopTyping");
      await eventually(() => seen().length === 2, 5000, "alice to see bob stop typing");

      // Windows that lapse (TYPING_TIMEOUT_MS 400 ms) on both nodes: again one true, one false.
      await emit(tab2, "typing");
      await emit(tab1, "typing");
      await eventually(() => seen().length === 4, 5000, "alice to see bob's second round end");
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(seen(), [true, false, true, false]);
    });

    // nginx's stickiness does not depend on Redis: once per adapter is enough.
    if (shards === 0) test("long-polling is sticky through nginx and spreads over both nodes from one address", async () => {
      const conv = await createConversation(fx.cluster.url, "poller-0", Array.from({ length: 12 }, (_, i) => `poller-${i}`));
      const pollers: Member[] = [];
      for (let i = 0; i < 12; i++) {
        // No upgrade: every packet is a separate HTTP request that must reach the session's node.
        const m = await Member.connect(fx.cluster.url, `poller-${i}`, conv, { transports: ["polling"], reconnection: false });
        pollers.push(m);
        fx.members.push(m);
      }
      const ack = (await pollers[0]!.socket.timeout(5000).emitWithAck("sendMessage", { conversationId: conv, message: "to all pollers" })) as SendAck;
      assert.ok(ack.ok);
      await eventually(() => pollers.every((p) => p.bySeq.has(1)), 10_000, "every poller to receive the message");
      assert.ok(pollers.every((p) => p.connects === 1), "no poller lost its session");
      const perNode = await Promise.all(
        fx.cluster.nodes.map(async (n) => {
          const text = await (await fetch(`${n.url}/metrics`)).text();
          return Number(/^chat_connected_sockets\{[^}]*\} (\d+)/m.exec(text)?.[1] ?? "0");
        }),
      );
      assert.equal(perNode.reduce((a, b) => a + b, 0) >= 12, true, `connected sockets per node: ${perNode.join(", ")}`);
      assert.ok(perNode.every((c) => c >= 2), `both nodes hold pollers (one client address): ${perNode.join(", ")}`);
    });
  });
}
