/**
 * The Redis broker on its own, against a real redis-server: both adapters carry a room broadcast
 * between two Socket.IO servers; presence counts sockets across brokers, lapses when a broker stops
 * heart-beating and is announced offline by a sweeper; a Redis outage never crashes, readiness names
 * Redis, and everything recovers when it returns.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { Server } from "socket.io";
import { io as ioClient, type Socket } from "socket.io-client";
import { eventually, freePort, startRedis, stopAll, waitForEvent, type RedisHandle } from "@chat/test-kit";
import { loadConfig } from "../../src/config.ts";
import { createMetrics } from "../../src/metrics.ts";
import { createRedisBroker, type RedisBroker } from "../../src/broker/redis-broker.ts";
import { parseRedisUrl } from "../../src/broker/redis-connection.ts";

const quiet = { info() {}, warn() {}, error() {} };

async function broker(url: string, env: Record<string, string> = {}) {
  const config = loadConfig({ JWT_SECRET: "test-secret-0123456789abcdef", REDIS_URL: url, NODE_ID: `b-${Math.random().toString(36).slice(2, 8)}`, PRESENCE_TTL_MS: "1000", ...env });
  const metrics = createMetrics(config.nodeId);
  const b = (await createRedisBroker(config, quiet, metrics)) as RedisBroker;
  return { b, metrics };
}

async function ioServer(adapter: unknown) {
  const server = http.createServer();
  const io = new Server(server, { adapter: adapter as never });
  io.on("connection", (s) => s.on("join", (room: string, ack: () => void) => void Promise.resolve(s.join(room)).then(() => ack())));
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return { io, url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => io.close(() => r(null))) };
}

const sockets: Socket[] = [];
async function client(url: string, room: string): Promise<Socket> {
  const s = ioClient(url, { transports: ["websocket"], forceNew: true, reconnection: false });
  sockets.push(s);
  await new Promise((r) => s.once("connect", () => r(null)));
  await s.timeout(3000).emitWithAck("join", room);
  return s;
}

describe("redis broker", () => {
  let redis: RedisHandle;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    for (const s of sockets) s.disconnect();
    await stopAll();
  });

  test("parses standalone and cluster URLs", () => {
    assert.deepEqual(parseRedisUrl("redis://:pw@h:7000/2"), { cluster: false, nodes: [{ host: "h", port: 7000 }], options: { password: "pw", db: 2 } });
    const c = parseRedisUrl("rediss://u:p@a:7000?cluster=1&nodes=b:7001,c:7002");
    assert.equal(c.cluster, true);
    assert.deepEqual(c.nodes, [{ host: "a", port: 7000 }, { host: "b", port: 7001 }, { host: "c", port: 7002 }]);
    assert.deepEqual(c.options, { username: "u", password: "p", tls: {} });
  });

  for (const mode of ["classic", "sharded"] as const) {
    test(`${mode} adapter: a room broadcast reaches the other server`, async () => {
      const one = await broker(redis.url, { REDIS_ADAPTER: mode });
      const two = await broker(redis.url, { REDIS_ADAPTER: mode });
      const a = await ioServer(one.b.adapter);
      const b = await ioServer(two.b.adapter);
      try {
        const onB = await client(b.url, "room-1");
        const got = waitForEvent<string>(onB, "hello");
        // The sharded adapter subscribes per room when it is created on a node: wait until B's subscription is live.
        await eventually(async () => {
          a.io.to("room-1").emit("hello", "from A");
          return Promise.race([got, new Promise((r) => setTimeout(() => r(false), 200))]);
        }, 5000, "the broadcast to cross");
        assert.equal(await got, "from A");
      } finally {
        await a.close();
        await b.close();
        await one.b.close();
        await two.b.close();
      }
    });
  }

  test("presence counts sockets across nodes and sweeps a dead node's entries", async () => {
    const one = await broker(redis.url);
    const two = await broker(redis.url);
    const offline: string[] = [];
    two.b.start((c, u, online) => online || offline.push(`${c}/${u}`));
    assert.equal(await one.b.presence.join("c1", "alice", "s1"), true);
    assert.equal(await two.b.presence.join("c1", "alice", "s2"), false);
    assert.equal(await two.b.presence.join("c1", "bob", "s3"), true);
    assert.deepEqual(await one.b.presence.online("c1"), ["alice", "bob"]);
    assert.equal(await two.b.presence.leave("c1", "alice", "s2"), false);
    assert.equal(await two.b.presence.leave("c1", "bob", "s3"), true);
    assert.equal(await two.b.presence.leave("c1", "bob", "s3"), false, "a second leave is not a second offline");
    // Node one dies without leaving: alice's entry lapses after the TTL and node two's sweeper announces it, once.
    await one.b.close();
    await eventually(() => offline.includes("c1/alice"), 5000, "the sweeper to announce alice offline");
    assert.deepEqual(await two.b.presence.online("c1"), []);
    assert.deepEqual(offline, ["c1/alice"]);
    await two.b.close();
  });

  test("a heartbeat that comes after the sweep announced its user offline announces them online again, once", async () => {
    const late = await broker(redis.url);
    const sweeper = await broker(redis.url);
    try {
      const events: string[] = [];
      // Only this test's conversation: the shared Redis still holds lapsing entries of other tests.
      sweeper.b.start((c, u, online) => c === "c4" && events.push(`sweeper ${c}/${u} ${online}`));
      assert.equal(await late.b.presence.join("c4", "fay", "s1"), true);
      // `late` does not heart-beat yet (not started): fay's entry lapses and the sweeper announces her offline.
      await eventually(() => events.includes("sweeper c4/fay false"), 5000, "the sweeper to announce fay offline");
      assert.deepEqual(await sweeper.b.presence.online("c4"), []);
      // Its heartbeat resumes: fay's socket is still there, so she is back, announced by the late node.
      late.b.start((c, u, online) => c === "c4" && events.push(`late ${c}/${u} ${online}`));
      await eventually(() => events.includes("late c4/fay true"), 5000, "the late node to announce fay online");
      assert.deepEqual(await sweeper.b.presence.online("c4"), ["fay"]);
      await new Promise((r) => setTimeout(r, 1200));
      assert.deepEqual(events, ["sweeper c4/fay false", "late c4/fay true"], "one offline, one online, nothing more");
    } finally {
      await late.b.close();
      await sweeper.b.close();
    }
  });

  test("a user who joins again after a sweep is announced by the join, not again by the heartbeat", async () => {
    const late = await broker(redis.url);
    const sweeper = await broker(redis.url);
    try {
      const events: string[] = [];
      sweeper.b.start((c, u, online) => c === "c5" && events.push(`sweeper ${c}/${u} ${online}`));
      await late.b.presence.join("c5", "gus", "s1");
      await eventually(() => events.includes("sweeper c5/gus false"), 5000, "the sweeper to announce gus offline");
      assert.equal(await sweeper.b.presence.join("c5", "gus", "s2"), true, "a new socket is the user's first again");
      late.b.start((c, u, online) => c === "c5" && events.push(`late ${c}/${u} ${online}`));
      await new Promise((r) => setTimeout(r, 1200));
      assert.deepEqual(events, ["sweeper c5/gus false"], "the late heartbeat does not announce gus a second time");
      assert.deepEqual(await sweeper.b.presence.online("c5"), ["gus"]);
    } finally {
      await late.b.close();
      await sweeper.b.close();
    }
  });

  test("the heartbeat keeps a live node's users online past the TTL", async () => {
    const one = await broker(redis.url);
    one.b.start(() => {});
    await one.b.presence.join("c2", "carol", "s9");
    await new Promise((r) => setTimeout(r, 2500));
    assert.deepEqual(await one.b.presence.online("c2"), ["carol"]);
    await one.b.close();
  });

  test("Redis down: no crash, ping names Redis, publishes are counted, all recovers", async () => {
    const port = await freePort();
    const own = await startRedis(port);
    const one = await broker(own.url);
    const two = await broker(own.url);
    const a = await ioServer(one.b.adapter);
    const b = await ioServer(two.b.adapter);
    try {
      await one.b.ping();
      await one.b.presence.join("c3", "dan", "s1");
      await own.stop("SIGKILL");
      await assert.rejects(one.b.ping(), /Redis/);
      await eventually(async () => (await one.metrics.redisUp.get()).values[0]?.value === 0, 5000, "chat_redis_up to be 0");
      for (let i = 0; i < 20; i++) a.io.to("room-x").emit("hello", i);
      assert.equal(await one.b.presence.join("c3", "erin", "s2"), true, "presence answers from the node's own sockets while Redis is away");
      await eventually(async () => (await one.metrics.brokerPublishErrors.get()).values[0]!.value > 0, 5000, "publish errors counted");
      // Back on the same port, empty (no persistence): connections, subscriptions and presence come back by themselves.
      const again = await startRedis(port);
      await eventually(() => one.b.ping().then(() => true), 10_000, "ping to succeed again");
      await eventually(() => two.b.ping().then(() => true), 10_000, "ping to succeed again");
      const onB = await client(b.url, "room-y");
      const got = waitForEvent<string>(onB, "hello", { timeoutMs: 10_000 });
      await eventually(async () => {
        a.io.to("room-y").emit("hello", "after");
        return Promise.race([got, new Promise((r) => setTimeout(() => r(false), 200))]);
      }, 10_000, "delivery to resume");
      await eventually(async () => (await two.b.presence.online("c3")).join() === "dan,erin", 5000, "presence rebuilt by the heartbeat");
      await again.stop();
    } finally {
      await a.close();
      await b.close();
      await one.b.close();
      await two.b.close();
    }
  });

  test("a wrong REDIS_URL starts anyway and fails readiness naming Redis", async () => {
    const port = await freePort();
    const { b } = await broker(`redis://127.0.0.1:${port}`);
    await assert.rejects(b.ping(), (err: Error) => /Redis/.test(err.message) && /ECONNREFUSED/.test(err.message));
    await b.close();
  });
});
