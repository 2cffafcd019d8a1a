/**
 * A node dies under a steady send load, through nginx, with real Redis and three real nodes:
 * `kill -9`, then SIGTERM (drain). Its clients reconnect through nginx to the survivors, re-join
 * with `sinceSeq` and end with every acknowledged message exactly once; history holds every
 * acknowledged message. SIGTERM also exits 0 within SHUTDOWN_TIMEOUT_MS, and nginx answers no 5xx
 * to new requests while the node drains. A user whose only socket died with the node is announced
 * offline once its presence lapses (PRESENCE_TTL_MS). The kill -9 scenario runs again on a real
 * 3-shard Redis Cluster with the sharded adapter (what docs/cluster.md recommends there).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { eventually, mintToken, sleep, stopAll } from "@chat/test-kit";
import { startCluster, type Cluster } from "../../../../infra/cluster/cluster.ts";
import { CLUSTER_ENV, Member, assertExactlyOnce, assertHistory, cookieFor, createConversation, history, probeRequests, sendSteadily } from "./helpers.ts";

/** New requests through nginx while a node fails, pinned by the sticky cookie: a handshake, a history read, a health check. */
function probe(lbUrl: string, cookie: string, conv: string, token: string) {
  return probeRequests(
    lbUrl,
    [
      { what: "handshake", path: "/socket.io/?EIO=4&transport=polling", headers: { cookie } },
      { what: "history", path: `/conversations/${conv}/messages?limit=5`, headers: { cookie, authorization: `Bearer ${token}` } },
      { what: "healthz", path: "/healthz", headers: { cookie } },
    ],
    10,
  );
}

async function scenario(cluster: Cluster, signal: "SIGKILL" | "SIGTERM", tag: string) {
  const victim = cluster.nodes[0]!;
  const users = ["s1", "s2", "r1", "r2", "r3", "ghost"].map((u) => `${tag}-${u}`);
  const [s1, s2, r1, r2, r3, ghost] = users as [string, string, string, string, string, string];
  const conv = await createConversation(cluster.url, s1, users);
  const onVictim = await cookieFor(cluster.url, victim.nodeId);
  const members = [
    await Member.connect(cluster.url, s1, conv, { cookie: onVictim }),
    await Member.connect(cluster.url, s2, conv, { cookie: await cookieFor(cluster.url, "node-2") }),
    await Member.connect(cluster.url, r1, conv, { cookie: onVictim }),
    await Member.connect(cluster.url, r2, conv, { cookie: await cookieFor(cluster.url, "node-2") }),
    await Member.connect(cluster.url, r3, conv, { cookie: await cookieFor(cluster.url, "node-3") }),
  ];
  // A user that does not come back: its presence must lapse and be announced by a survivor.
  const gone = await Member.connect(cluster.url, ghost, conv, { cookie: onVictim, reconnection: false });
  const watcher = members[3]!;
  await eventually(() => watcher.presence.some((p) => p.userId === ghost && p.online), 5000, "the ghost to be online");

  try {
    const load = Promise.all([sendSteadily(members[0]!, 60, 25, `${tag}-a`), sendSteadily(members[1]!, 60, 25, `${tag}-b`)]);
    // Strike once the load is running and a few messages went through the victim's sockets.
    await eventually(() => members[2]!.contiguous() >= 10, 10_000, "the load to be flowing");
    const t0 = Date.now();
    const exit = victim.stop(signal);
    const code = await exit;
    const exitMs = Date.now() - t0;
    const results = await load;
    const acked = results.flatMap((r) => r.acked.map((a) => a.message));
    assert.equal(acked.length, 120, "every send acknowledged (with retries across the failure)");
    const lastSeq = Math.max(...acked.map((m) => m.seq));
    assert.equal(lastSeq, 120, "no seq consumed twice by a retried send");
    await eventually(() => members.every((m) => m.contiguous() === lastSeq), 20_000, "every member to catch up");
    for (const m of members) assertExactlyOnce(m, acked, lastSeq);
    assertHistory(await history(cluster.url, r2, conv), acked);
    assert.ok(members[0]!.connects >= 2 && members[2]!.connects >= 2, "the victim's clients reconnected through nginx");
    await eventually(() => watcher.presence.some((p) => p.userId === ghost && !p.online), 15_000, "the ghost to be announced offline");
    gone.close();
    return { code, exitMs, retries: results.reduce((n, r) => n + r.retries, 0), duplicates: members.reduce((n, m) => n + m.duplicates, 0), conv, members };
  } finally {
    for (const m of members) m.close();
  }
}

describe("a node dies under load (3 nodes behind nginx)", () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster({ nodes: 3, env: { ...CLUSTER_ENV, LOG_LEVEL: "info" } });
  });
  after(async () => {
    await cluster?.stop();
    await stopAll();
  });

  test("kill -9: clients reconnect elsewhere and hold every acknowledged message exactly once", async () => {
    const r = await scenario(cluster, "SIGKILL", "k");
    assert.equal(r.code, null, "killed by the signal");
    await cluster.nodes[0]!.restart();
  });

  test("kill -9 while a user types there and on a survivor: the survivors end it with one false", async () => {
    const victim = cluster.nodes[0]!;
    const conv = await createConversation(cluster.url, "ty-watcher", ["ty-watcher", "ty-user"]);
    const watcher = await Member.connect(cluster.url, "ty-watcher", conv, { cookie: await cookieFor(cluster.url, "node-2") });
    const onVictim = await Member.connect(cluster.url, "ty-user", conv, { cookie: await cookieFor(cluster.url, victim.nodeId), reconnection: false });
    const onSurvivor = await Member.connect(cluster.url, "ty-user", conv, { cookie: await cookieFor(cluster.url, "node-3") });
    try {
      const seen = () => watcher.typing.filter((t) => t.userId === "ty-user").map((t) => t.isTyping);
      await onVictim.socket.timeout(3000).emitWithAck("typing", { conversationId: conv });
      await onSurvivor.socket.timeout(3000).emitWithAck("typing", { conversationId: conv });
      await eventually(() => seen().length === 1, 5000, "the watcher to see the user typing");
      await victim.stop("SIGKILL");
      // The survivor's own end finds the dead node's claim still live, and asks again once it lapses.
      await onSurvivor.socket.timeout(3000).emitWithAck("stopTyping", { conversationId: conv });
      await eventually(() => seen().length === 2, 5000, "the watcher to see the user stop typing");
      await sleep(500);
      assert.deepEqual(seen(), [true, false]);
    } finally {
      for (const m of [watcher, onVictim, onSurvivor]) m.close();
      await victim.restart();
    }
  });

  test("kill -9 while a user types there only: a survivor's sweep ends it with one false", async () => {
    const victim = cluster.nodes[0]!;
    const conv = await createConversation(cluster.url, "ty1-watcher", ["ty1-watcher", "ty1-user", "ty1-other"]);
    const watcher = await Member.connect(cluster.url, "ty1-watcher", conv, { cookie: await cookieFor(cluster.url, "node-2") });
    const other = await Member.connect(cluster.url, "ty1-other", conv, { cookie: await cookieFor(cluster.url, "node-3") });
    const onVictim = await Member.connect(cluster.url, "ty1-user", conv, { cookie: await cookieFor(cluster.url, victim.nodeId), reconnection: false });
    try {
      const seen = (m: Member) => m.typing.filter((t) => t.userId === "ty1-user").map((t) => t.isTyping);
      await onVictim.socket.timeout(3000).emitWithAck("typing", { conversationId: conv });
      await eventually(() => seen(watcher).length === 1 && seen(other).length === 1, 5000, "both to see the user typing");
      await victim.stop("SIGKILL");
      // Its only claim lapses 2 × TYPING_TIMEOUT_MS after the typing; a sweep (every TTL/2) ends it.
      await eventually(() => seen(watcher).length === 2 && seen(other).length === 2, 5000, "both to see the user stop typing");
      await sleep(1500);
      assert.deepEqual(seen(watcher), [true, false], "one false, though two survivors sweep");
      assert.deepEqual(seen(other), [true, false]);
    } finally {
      for (const m of [watcher, other, onVictim]) m.close();
      await victim.restart();
    }
  });

  test("SIGTERM: drains, exits 0 within SHUTDOWN_TIMEOUT_MS, no 5xx from nginx meanwhile", async (t) => {
    const victim = cluster.nodes[0]!;
    const conv = await createConversation(cluster.url, "t-probe", ["t-probe"]);
    const token = await mintToken("t-probe");
    const cookie = await cookieFor(cluster.url, victim.nodeId);
    // Watch the victim's own /readyz turn 503 (draining) while new requests go through nginx.
    let sawDraining = false;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        // As fast as the node answers (the drain may last only tens of milliseconds); slower once it is gone.
        try {
          const res = await fetch(`${victim.url}/readyz`);
          if (res.status === 503) sawDraining = true;
          await res.arrayBuffer();
        } catch {
          await sleep(5);
        }
      }
    })();
    const p = probe(cluster.url, cookie, conv, token);
    try {
      const r = await scenario(cluster, "SIGTERM", "t");
      const log = victim.proc().output().split("\n").filter((l) => !/request completed|incoming request|FSTDEP|trace-warnings/.test(l)).slice(-30).join("\n");
      assert.equal(r.code, 0, `exit code 0 after draining; the node's log:\n${log}`);
      assert.ok(r.exitMs <= Number(CLUSTER_ENV.SHUTDOWN_TIMEOUT_MS) + 1000, `exited within SHUTDOWN_TIMEOUT_MS (${r.exitMs} ms)`);
    } finally {
      watching = false;
      await p.stop();
      await watch;
    }
    // The drain can be over in milliseconds, so seeing /readyz 503 from outside is luck; the node's log
    // proves it drained, and the probes covered before, during and after the drain.
    t.diagnostic(`victim /readyz seen answering 503: ${sawDraining}`);
    const log = victim.proc().output();
    assert.ok(log.includes('"msg":"draining"') && log.includes('"msg":"drained"'), "the victim drained");
    const bad = p.statuses.filter((s) => s.status >= 500);
    assert.ok(p.statuses.length > 20, `probes ran (${p.statuses.length})`);
    assert.deepEqual(bad, [], `nginx answered ${bad.length} of ${p.statuses.length} new requests with 5xx`);
    await cluster.nodes[0]!.restart();
  });
});

describe("a node dies under load on a 3-shard Redis Cluster (sharded adapter)", () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster({ nodes: 3, redisShards: 3, redisAdapter: "sharded", env: CLUSTER_ENV });
  });
  after(async () => {
    await cluster?.stop();
    await stopAll();
  });

  test("kill -9: every acknowledged message exactly once, and the dead node's user is swept offline", async () => {
    assert.equal(cluster.redis.ports.length, 3);
    assert.match(cluster.redis.url, /\?cluster=1&nodes=/);
    const r = await scenario(cluster, "SIGKILL", "rc");
    assert.equal(r.code, null, "killed by the signal");
  });
});
