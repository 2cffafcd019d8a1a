/**
 * Typing and presence reconcile after a Redis outage (issue 18), on a real cluster behind nginx:
 * Redis killed (-9) and started again empty 3 s later. A watcher on node-1 must not keep a
 * `typing: true` from node-2 past TYPING_TIMEOUT_MS + 1 s; a user who left and one who joined on
 * node-2 during the outage are each announced to node-1 once when Redis is back, and the presence
 * endpoint agrees. And a node killed while holding thousands of (conversation, user) pairs has
 * them all announced offline within two heartbeat periods of their lapse, however many (the sweep
 * works in batches).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { io, type Socket } from "socket.io-client";
import type { PresenceEvent } from "@chat/protocol";
import { api, eventually, mintToken, sleep, stopAll } from "@chat/test-kit";
import { startCluster, type Cluster } from "../../../../infra/cluster/cluster.ts";
import { CLUSTER_ENV, Member, cookieFor, createConversation } from "./helpers.ts";

const TYPING_TIMEOUT_MS = Number(CLUSTER_ENV.TYPING_TIMEOUT_MS);
const PRESENCE_TTL_MS = Number(CLUSTER_ENV.PRESENCE_TTL_MS);

/** Kills redis-server (-9), waits `downMs`, starts it again (empty: no persistence), waits until every node is ready. */
async function restartRedisHard(cluster: Cluster, downMs = 3000): Promise<number> {
  process.kill(cluster.redis.pid, "SIGKILL");
  await sleep(downMs);
  await cluster.redis.start();
  for (const n of cluster.nodes) await n.waitReady(20_000);
  return Date.now();
}

describe("typing and presence after Redis is killed and comes back empty (2 nodes)", () => {
  let cluster: Cluster;
  const open: { close(): void }[] = [];
  before(async () => {
    cluster = await startCluster({ nodes: 2, env: CLUSTER_ENV });
  });
  after(async () => {
    for (const m of open) m.close();
    await cluster?.stop();
    await stopAll();
  });
  const join = async (user: string, conv: string, nodeId: string) => {
    const m = await Member.connect(cluster.url, user, conv, { cookie: await cookieFor(cluster.url, nodeId) });
    open.push(m);
    return m;
  };

  test("no typing: true outlives TYPING_TIMEOUT_MS + 1 s across the outage", async () => {
    const conv = await createConversation(cluster.url, "rt-watcher", ["rt-watcher", "rt-typist"]);
    const watcher = await join("rt-watcher", conv, "node-1");
    const typist = await join("rt-typist", conv, "node-2");
    const seen = () => watcher.typing.filter((t) => t.userId === "rt-typist").map((t) => t.isTyping);
    await typist.socket.timeout(3000).emitWithAck("typing", { conversationId: conv });
    const typedAt = Date.now();
    await eventually(() => seen().length === 1, 5000, "the watcher to see the typist typing");
    // Redis goes away before the typing ends: node-2's `false` cannot reach node-1.
    const readyAt = await restartRedisHard(cluster);
    await eventually(() => seen().at(-1) === false, Math.max(0, typedAt + TYPING_TIMEOUT_MS + 1000 - Date.now()) + 1000, `the watcher to see the typing end (Redis ready ${readyAt - typedAt} ms after the typing)`);
    await sleep(TYPING_TIMEOUT_MS + 500);
    assert.deepEqual(seen(), [true, false], "one true, one false");
  });

  test("a leave and a join during the outage are each announced once when Redis is back", async () => {
    const conv = await createConversation(cluster.url, "rp-watcher", ["rp-watcher", "rp-leaver", "rp-joiner"]);
    const watcher = await join("rp-watcher", conv, "node-1");
    const leaver = await Member.connect(cluster.url, "rp-leaver", conv, { cookie: await cookieFor(cluster.url, "node-2"), reconnection: false });
    open.push(leaver);
    const events = (user: string) => watcher.presence.filter((p: PresenceEvent) => p.userId === user).map((p) => p.online);
    await eventually(() => events("rp-leaver").at(-1) === true, 5000, "the watcher to see the leaver online");

    process.kill(cluster.redis.pid, "SIGKILL");
    await sleep(500);
    leaver.close();
    const joiner = await join("rp-joiner", conv, "node-2");
    await sleep(2500);
    await cluster.redis.start();
    for (const n of cluster.nodes) await n.waitReady(20_000);

    await eventually(() => events("rp-leaver").at(-1) === false && events("rp-joiner").at(-1) === true, PRESENCE_TTL_MS + 2000, "both changes to be announced to node-1");
    await sleep(PRESENCE_TTL_MS);
    assert.deepEqual(events("rp-leaver"), [true, false], "the leave, once");
    assert.deepEqual(events("rp-joiner"), [true], "the join, once");
    const res = await api(cluster.url, await mintToken("rp-watcher")).get<{ online: string[] }>(`/conversations/${conv}/presence`);
    assert.equal(res.status, 200);
    assert.ok(res.body.online.includes("rp-joiner"), JSON.stringify(res.body));
    assert.ok(!res.body.online.includes("rp-leaver"), JSON.stringify(res.body));
    assert.ok(joiner.socket.connected);
  });
});

describe("a killed node's users, thousands of pairs, are announced offline in bounded time (2 nodes)", () => {
  let cluster: Cluster;
  const sockets: Socket[] = [];
  before(async () => {
    cluster = await startCluster({ nodes: 2, env: CLUSTER_ENV });
  });
  after(async () => {
    for (const s of sockets) s.close();
    await cluster?.stop();
    await stopAll();
  });

  test("4,000 (conversation, user) pairs on a killed node: all offline within two heartbeat periods of their lapse", async () => {
    const CONVS = 80;
    const USERS = 50;
    const users = Array.from({ length: USERS }, (_, i) => `bulk-${i}`);
    const convs: string[] = [];
    for (let c = 0; c < CONVS; c++) convs.push(await createConversation(cluster.url, "bulk-watcher", ["bulk-watcher", ...users]));
    const connect = async (user: string, nodeId: string) => {
      const s = io(cluster.url, { auth: { token: await mintToken(user) }, transports: ["websocket"], forceNew: true, reconnection: false, extraHeaders: { cookie: await cookieFor(cluster.url, nodeId) } });
      sockets.push(s);
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${user} could not connect`)), 10_000);
        s.once("connect", () => (clearTimeout(t), resolve()));
      });
      for (const conversationId of convs) await s.timeout(5000).emitWithAck("joinConversation", { conversationId });
      return s;
    };
    const watcher = await connect("bulk-watcher", "node-1");
    const offline = new Set<string>();
    let online = 0;
    watcher.on("presence", (p: PresenceEvent) => {
      if (p.userId === "bulk-watcher") return;
      if (p.online) online++;
      else offline.add(`${p.conversationId}/${p.userId}`);
    });
    for (const u of users) await connect(u, "node-2");
    await eventually(() => online >= CONVS * USERS, 30_000, `the watcher to see ${CONVS * USERS} pairs online (saw ${online})`);

    const killedAt = Date.now();
    await cluster.nodes[1]!.stop("SIGKILL");
    // Entries lapse PRESENCE_TTL_MS after node-2's last heartbeat (at most TTL/3 before the kill); two heartbeat periods later every pair is announced.
    const bound = PRESENCE_TTL_MS + 2 * (PRESENCE_TTL_MS / 3) + 1500;
    await eventually(() => offline.size === CONVS * USERS, bound + 15_000, "every pair announced offline at all");
    const tookMs = Date.now() - killedAt;
    assert.ok(tookMs <= bound, `all ${CONVS * USERS} pairs announced offline ${tookMs} ms after the kill (bound ${bound} ms)`);
  });
});
