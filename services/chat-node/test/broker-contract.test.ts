/**
 * The broker contract (`src/broker/types.ts`), one suite looped over every implementation: the
 * in-process twin (`LocalBroker`) and the Redis broker with both adapters, against a real
 * redis-server. Presence counts sockets per (conversation, user); a room broadcast through the
 * broker's adapter reaches the node's own sockets; readiness answers while the backend does.
 * Cases that need a second node (a broadcast or a signal crossing, a typing claim of another node)
 * or a backend to lose (an outage: Redis killed and started again empty) run where the broker
 * spans nodes and say why they are skipped where it does not.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { Server } from "socket.io";
import { io as ioClient, type Socket } from "socket.io-client";
import { eventually, freePort, startRedis, stopAll, waitForEvent, type RedisHandle } from "@chat/test-kit";
import { loadConfig } from "../src/config.ts";
import { createMetrics } from "../src/metrics.ts";
import { createBroker } from "../src/broker/index.ts";
import type { Broker } from "../src/broker/types.ts";

const quiet = { info() {}, warn() {}, error() {} };

interface Impl {
  name: string;
  clustered: boolean;
  make(): Promise<Broker>;
  /** The same implementation on a Redis of its own (the outage case kills it). */
  makeOn?(redisUrl: string): Promise<Broker>;
}

let redis: RedisHandle | undefined;
const made: Broker[] = [];
const closers: (() => Promise<unknown>)[] = [];

async function makeBroker(env: Record<string, string>): Promise<Broker> {
  const config = loadConfig({ JWT_SECRET: "test-secret-0123456789abcdef", NODE_ID: `k-${Math.random().toString(36).slice(2, 8)}`, PRESENCE_TTL_MS: "1000", ...env });
  const b = await createBroker(config, quiet, createMetrics(config.nodeId));
  made.push(b);
  return b;
}

const IMPLS: Impl[] = [
  { name: "local (in-process twin)", clustered: false, make: () => makeBroker({}) },
  ...(["classic", "sharded"] as const).map((adapter) => ({
    name: `redis, ${adapter} adapter`,
    clustered: true,
    make: () => makeBroker({ REDIS_URL: redis!.url, REDIS_ADAPTER: adapter }),
    makeOn: (url: string) => makeBroker({ REDIS_URL: url, REDIS_ADAPTER: adapter }),
  })),
];

async function serverOver(broker: Broker) {
  const server = http.createServer();
  const io = new Server(server, broker.adapter ? { adapter: broker.adapter } : {});
  io.on("connection", (s) => s.on("join", (room: string, ack: () => void) => void Promise.resolve(s.join(room)).then(() => ack())));
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  closers.push(() => new Promise((r) => io.close(() => r(null))));
  return { io, url: `http://127.0.0.1:${port}` };
}

async function member(url: string, room: string): Promise<Socket> {
  const s = ioClient(url, { transports: ["websocket"], forceNew: true, reconnection: false });
  closers.push(async () => s.disconnect());
  await new Promise((r) => s.once("connect", () => r(null)));
  await s.timeout(3000).emitWithAck("join", room);
  return s;
}

/** Emits until the first delivery: the sharded adapter subscribes per room, asynchronously. */
async function crosses(emit: () => void, got: Promise<unknown>): Promise<unknown> {
  return eventually(async () => {
    emit();
    return Promise.race([got, new Promise((r) => setTimeout(() => r(false), 200))]);
  }, 5000, "the broadcast to arrive");
}

before(async () => {
  redis = await startRedis();
});
after(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
  for (const b of made) await b.close().catch(() => {});
  await stopAll();
});

for (const impl of IMPLS) {
  describe(`broker contract: ${impl.name}`, () => {
    test("presence counts each user's sockets per conversation", async () => {
      const b = await impl.make();
      const c = `c-${Math.random()}`;
      assert.equal(await b.presence.join(c, "alice", "s1"), true, "the user's first socket");
      assert.equal(await b.presence.join(c, "alice", "s2"), false, "a second socket is not a second online");
      assert.equal(await b.presence.join(c, "bob", "s3"), true);
      assert.deepEqual(await b.presence.online(c), ["alice", "bob"], "sorted user ids");
      assert.equal(await b.presence.leave(c, "alice", "s1"), false, "alice still has s2");
      assert.equal(await b.presence.leave(c, "alice", "s2"), true, "her last socket");
      assert.equal(await b.presence.leave(c, "alice", "s2"), false, "a second leave is not a second offline");
      assert.equal(await b.presence.leave(c, "carol", "s9"), false, "an unknown socket");
      assert.deepEqual(await b.presence.online(c), ["bob"]);
      assert.deepEqual(await b.presence.online(`${c}-other`), [], "conversations are apart");
    });

    test("a room broadcast through the adapter reaches the node's own sockets, and only the room's", async () => {
      const b = await impl.make();
      const node = await serverOver(b);
      const inRoom = await member(node.url, "room-a");
      const elsewhere = await member(node.url, "room-b");
      let strays = 0;
      elsewhere.on("hello", () => strays++);
      const got = waitForEvent<string>(inRoom, "hello");
      assert.equal(await crosses(() => node.io.to("room-a").emit("hello", "hi"), got), "hi");
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(strays, 0, "a socket of another room got nothing");
    });

    test("readiness answers while the backend does", async () => {
      const b = await impl.make();
      await b.ping();
    });

    test("a room broadcast and a server-side signal cross to a second node", async (t) => {
      if (!impl.clustered) return t.skip("a single node has no second node to reach");
      const one = await serverOver(await impl.make());
      const two = await serverOver(await impl.make());
      const onTwo = await member(two.url, "room-x");
      const got = waitForEvent<string>(onTwo, "hello");
      assert.equal(await crosses(() => one.io.to("room-x").emit("hello", "from one"), got), "from one");
      const signals: unknown[] = [];
      two.io.on("sent", (s: unknown) => signals.push(s));
      await eventually(() => {
        one.io.serverSideEmit("sent", [{ conversationId: "c", userId: "u", at: 1 }]);
        return signals.length > 0;
      }, 5000, "the signal to cross");
      assert.deepEqual(signals[0], [{ conversationId: "c", userId: "u", at: 1 }]);
    });

    test("presence spans nodes: a user's sockets on two nodes are one online", async (t) => {
      if (!impl.clustered) return t.skip("a single node has no second node to count with");
      const a = await impl.make();
      const b = await impl.make();
      const c = `c-${Math.random()}`;
      assert.equal(await a.presence.join(c, "dan", "s1"), true);
      assert.equal(await b.presence.join(c, "dan", "s2"), false);
      assert.deepEqual(await b.presence.online(c), ["dan"]);
      assert.equal(await a.presence.leave(c, "dan", "s1"), false);
      assert.equal(await b.presence.leave(c, "dan", "s2"), true);
    });

    test("typing arbiter: one start and one end for a user typing on two nodes", async (t) => {
      const a = await impl.make();
      if (!a.typing) return t.skip("a single node's typing transitions are its own: it has no arbiter");
      const b = await impl.make();
      assert.ok(b.typing);
      const c = `c-${Math.random()}`;
      assert.equal(await a.typing.begin(c, "eve"), true, "the cluster-wide start");
      assert.equal(await b.typing.begin(c, "eve"), false, "another node's claim is live");
      assert.equal(await a.typing.live(c, "eve"), true, "a watcher finds the typing backed by a claim");
      const first = await a.typing.end(c, "eve");
      assert.equal(first.ended, false, "b still sees eve typing");
      assert.ok(first.recheckInMs !== undefined && first.recheckInMs > 0);
      assert.deepEqual(await b.typing.end(c, "eve"), { ended: true }, "the cluster-wide end");
      assert.deepEqual(await a.typing.recheck(c, "eve"), { ended: false }, "no second end");
      assert.equal(await a.typing.live(c, "eve"), false, "no claim backs it any more");
    });

    test("an outage: readiness names it, presence answers from the node's own sockets, recovery is told once with what Redis missed", async (t) => {
      if (!impl.makeOn) return t.skip("the in-process twin has no backend to lose");
      const own = await startRedis();
      const b = await impl.makeOn(own.url);
      let downs = 0;
      let recoveries = 0;
      b.onDown(() => downs++);
      b.onRecovered(() => recoveries++);
      await b.ping();
      const c = `c-${Math.random()}`;
      assert.equal(await b.presence.join(c, "ann", "s1"), true);

      process.kill(own.pid, "SIGKILL");
      await own.exited;
      await eventually(() => downs > 0, 10_000, "the broker to notice the outage");
      await assert.rejects(b.ping(), /Redis unavailable/, "readiness names Redis");
      assert.equal(await b.presence.join(c, "ben", "s2"), true, "a join during the outage is a first socket here");
      assert.deepEqual(await b.presence.online(c), ["ann", "ben"], "presence answers from this node's own sockets");
      assert.equal(recoveries, 0);

      await startRedis(own.port); // empty: no persistence
      await eventually(() => recoveries > 0, 15_000, "the broker to recover");
      await b.ping();
      assert.deepEqual(await b.missedPresence(), [{ conversationId: c, userId: "ben", online: true }], "the change Redis did not hear, with its state now");
      assert.deepEqual(await b.missedPresence(), [], "told once");
      assert.deepEqual(await b.presence.online(c), ["ann", "ben"], "this node's entries are back in the empty Redis");
      assert.equal(recoveries, 1, "one recovery for one outage");
    });
  });
}
