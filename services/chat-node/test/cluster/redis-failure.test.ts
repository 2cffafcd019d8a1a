/**
 * Redis stopped and restarted under two nodes behind nginx: sends keep being stored and
 * acknowledged, /readyz answers 503 naming Redis, cross-node delivery resumes by itself, and the
 * client on the other node recovers the gap through `seq`; on one Redis and on a 3-shard Redis Cluster
 * (every shard stopped, then started again from its nodes.conf). And a node whose REDIS_URL points nowhere
 * starts, serves /healthz, fails readiness naming Redis and keeps running.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { MessageData, SendAck } from "@chat/protocol";
import { eventually, freePort, startNode, stopAll } from "@chat/test-kit";
import { CLUSTER_ENV, clusterPerSuite, assertExactlyOnce, assertHistory, createConversation, history, redisCli, type Member } from "./helpers.ts";

async function readyz(url: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, text: await res.text() };
}

async function send(m: Member, text: string, clientMessageId: string): Promise<MessageData> {
  const ack = (await m.socket.timeout(5000).emitWithAck("sendMessage", { conversationId: m.conversationId, message: text, clientMessageId })) as SendAck;
  assert.ok(ack.ok, JSON.stringify(ack));
  return ack.message;
}

const VARIANTS = [
  { adapter: "classic", shards: 0 },
  { adapter: "sharded", shards: 0 },
  { adapter: "sharded", shards: 3 },
] as const;

for (const { adapter, shards } of VARIANTS) {
  describe(`Redis stops and comes back (${adapter} adapter, ${shards ? `all ${shards} shards of a Redis Cluster` : "one Redis"})`, () => {
    const fx = clusterPerSuite({ nodes: 2, redisAdapter: adapter, redisShards: shards, env: CLUSTER_ENV });

    test("sends are stored while it is down, readiness names it, delivery and the gap recover", async () => {
      const conv = await createConversation(fx.cluster.url, "alice", ["alice", "bob"]);
      const alice = await fx.join("alice", conv, "node-1");
      const bob = await fx.join("bob", conv, "node-2");
      const acked: MessageData[] = [await send(alice, "before", "m-0")];
      await eventually(() => bob.contiguous() === 1, 5000, "bob to receive the first message");

      await fx.cluster.redis.stop();
      for (const node of fx.cluster.nodes) {
        await eventually(async () => {
          const r = await readyz(node.url);
          return r.status === 503 && /redis/i.test(r.text);
        }, 10_000, `${node.nodeId} /readyz to answer 503 naming Redis`);
      }
      // Stored and acknowledged while Redis is away; the other node's client may miss them live.
      for (let i = 1; i <= 10; i++) acked.push(await send(alice, `during ${i}`, `m-${i}`));
      assert.deepEqual(acked.map((m) => m.seq), Array.from({ length: 11 }, (_, i) => i + 1));
      assert.ok(alice.socket.connected && bob.socket.connected, "sockets stay up through the outage");
      // Without Redis the node can only reach its own sockets: bob, on the other node, has a gap to close.
      // (The sharded adapter delivers locally after its publish attempt settles, so after the ack.)
      await eventually(() => alice.contiguous() === 11, 5000, "alice, on the sending node, to get every message live");
      assert.equal(bob.bySeq.size, 1, "bob received nothing across nodes while Redis was down");

      await fx.cluster.redis.start();
      for (const node of fx.cluster.nodes) await eventually(async () => (await readyz(node.url)).status === 200, 15_000, `${node.nodeId} ready again`);
      // Cross-node delivery resumes without any restart: a fresh send from node 1 reaches bob live.
      let n = 11;
      await eventually(async () => {
        n++;
        acked.push(await send(alice, `after ${n}`, `m-${n}`));
        const seq = acked.at(-1)!.seq;
        await eventually(() => bob.bySeq.has(seq), 500, "live delivery").catch(() => undefined);
        return bob.bySeq.has(seq);
      }, 15_000, "live cross-node delivery to resume");
      // The live message after the gap makes bob catch up by seq: he ends with everything, once.
      const lastSeq = acked.at(-1)!.seq;
      await eventually(() => bob.contiguous() === lastSeq && alice.contiguous() === lastSeq, 10_000, "both to hold every message");
      assertExactlyOnce(bob, acked, lastSeq);
      assertExactlyOnce(alice, acked, lastSeq);
      assertHistory(await history(fx.cluster.url, "bob", conv), acked);
      assert.equal(bob.connects, 1, "bob never had to reconnect");
    });
  });
}

describe("one shard of a 3-shard Redis Cluster stops and comes back (sharded adapter)", () => {
  const fx = clusterPerSuite({ nodes: 2, redisAdapter: "sharded", redisShards: 3, env: CLUSTER_ENV });

  test("readiness names the cluster's state, sends are stored meanwhile, and every conversation's delivery resumes", async () => {
    const pairs: { alice: Member; bob: Member; acked: MessageData[] }[] = [];
    for (let i = 0; i < 6; i++) {
      const conv = await createConversation(fx.cluster.url, "alice", ["alice", "bob"]);
      const alice = await fx.join("alice", conv, "node-1");
      const bob = await fx.join("bob", conv, "node-2");
      pairs.push({ alice, bob, acked: [await send(alice, "before", `s-${i}-0`)] });
    }
    await eventually(() => pairs.every((p) => p.bob.contiguous() === 1), 5000, "every first message across nodes");

    // The shard that carries at least one conversation's channel (`<prefix>:sio#/#c:<id>#`) goes away.
    const carries = (port: number) => pairs.filter((p) => redisCli(port, "pubsub", "shardchannels").includes(`#c:${p.alice.conversationId}#`)).length;
    const victim = fx.cluster.redis.ports.reduce((best, port) => (carries(port) > carries(best) ? port : best));
    assert.ok(carries(victim) > 0, "some conversation's channel lives on a shard");
    redisCli(victim, "shutdown", "nosave");
    await eventually(() => redisCli(victim, "ping") === "", 5000, "the shard to be gone");
    // The other shards still answer PING, but the cluster refuses keys once it marks the shard failed.
    for (const node of fx.cluster.nodes) {
      await eventually(async () => {
        const r = await readyz(node.url);
        return r.status === 503 && /cluster_state:fail/.test(r.text);
      }, 15_000, `${node.nodeId} /readyz to answer 503 naming the Redis Cluster's state`);
    }

    for (const [i, p] of pairs.entries()) p.acked.push(await send(p.alice, "during", `s-${i}-1`));

    await fx.cluster.redis.start();
    for (const node of fx.cluster.nodes) await eventually(async () => (await readyz(node.url)).status === 200, 15_000, `${node.nodeId} ready again`);
    for (const [i, p] of pairs.entries()) {
      let n = 1;
      await eventually(async () => {
        n++;
        const m = await send(p.alice, `after ${n}`, `s-${i}-${n}`);
        p.acked.push(m);
        await eventually(() => p.bob.bySeq.has(m.seq), 500, "live delivery").catch(() => undefined);
        return p.bob.bySeq.has(m.seq);
      }, 15_000, `live cross-node delivery to resume in conversation ${i}`);
    }
    for (const p of pairs) {
      const lastSeq = p.acked.at(-1)!.seq;
      await eventually(() => p.bob.contiguous() === lastSeq, 10_000, "bob to hold every message");
      assertExactlyOnce(p.bob, p.acked, lastSeq);
      assertHistory(await history(fx.cluster.url, "bob", p.alice.conversationId), p.acked);
    }
  });
});

describe("a node with a wrong REDIS_URL", () => {
  after(() => stopAll());

  test("starts, fails readiness naming Redis, and keeps running", async () => {
    const node = await startNode({ REDIS_URL: `redis://127.0.0.1:${await freePort()}`});
    assert.equal((await fetch(`${node.url}/healthz`)).status, 200);
    const r = await readyz(node.url);
    assert.equal(r.status, 503);
    assert.match(r.text, /Redis/);
    // Several reconnect attempts later it is still alive and still says why.
    await eventually(async () => {
      const text = await (await fetch(`${node.url}/metrics`)).text();
      return Number(/^chat_broker_publish_errors_total\{[^}]*\} (\d+)/m.exec(text)?.[1] ?? "0") >= 3;
    }, 15_000, "several failed connection attempts");
    assert.equal(node.proc.exitCode, null, "the node did not exit");
    assert.match((await readyz(node.url)).text, /Redis/);
    assert.match(node.output(), /redis/i, "the log names Redis");
  });
});
