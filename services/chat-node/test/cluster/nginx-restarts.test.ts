/**
 * nginx in front of nodes that restart (infra/nginx/local.conf.template, infra/cluster): as long as
 * one node is ready, no handshake or REST call gets a 5xx, a restarted node takes new sessions at
 * once, a rolling restart ends with the connections spread evenly, scaling out and in moves only
 * the clients of the node removed, and the reloads that steer placement leave every other
 * session (long-polling ones included) where it is.
 *
 * The first test is the reproduction: each node in turn drained by SIGTERM from outside
 * (nginx is not told), started again on its port, with WebSockets open through nginx. With
 * `max_fails=1 fail_timeout=5s` a restarted node stayed out of rotation while its trial request
 * (a WebSocket) never finished, and once all three were marked nginx answered 502 to every
 * handshake.
 */
import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { io, type Socket } from "socket.io-client";
import { eventually, mintToken, sleep, stopAll } from "@chat/test-kit";
import { startCluster, type Cluster } from "../../../../infra/cluster/cluster.ts";
import { spreadRatio } from "../../../../infra/cluster/balance.ts";
import { CLUSTER_ENV, createConversation, probeRequests } from "./helpers.ts";

/** New requests through nginx during a restart: a handshake, a history read, a health check. */
function probe(lbUrl: string, token: string, conversationId: string) {
  return probeRequests(lbUrl, [
    { what: "handshake", path: "/socket.io/?EIO=4&transport=polling", headers: {} },
    { what: "history", path: `/conversations/${conversationId}/messages?limit=5`, headers: { authorization: `Bearer ${token}` } },
    { what: "healthz", path: "/healthz", headers: {} },
  ]);
}

interface Client {
  socket: Socket;
  disconnects: number;
}

async function connect(lbUrl: string, userId: string, transports?: ("polling" | "websocket")[]): Promise<Client> {
  const socket = io(lbUrl, { auth: { token: await mintToken(userId) }, withCredentials: true, forceNew: true, ...(transports ? { transports } : {}) });
  const c: Client = { socket, disconnects: 0 };
  socket.on("disconnect", () => c.disconnects++);
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${userId} could not connect`)), 10_000);
    socket.once("connect", () => (clearTimeout(t), resolve()));
  });
  return c;
}

async function counts(cluster: Cluster): Promise<Record<string, number>> {
  return cluster.connections();
}

const total = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0);

/** The connections per node once `expected` clients are connected again. */
async function settled(cluster: Cluster, expected: number): Promise<Record<string, number>> {
  let last: Record<string, number> = {};
  // Generous: socket.io-client's backoff grows to 5 s, and other suites may load the machine.
  // 50 s: past Socket.IO's default heartbeat (25 s interval + 20 s timeout), which is what reaps a
  // session whose client gave up on it (a reconnect attempt abandoned under load leaves one).
  await eventually(async () => total((last = await counts(cluster))) === expected, 50_000, `all ${expected} clients connected again`).catch((e: Error) => {
    throw new Error(`${e.message}; connections last seen per node: ${JSON.stringify(last)}`);
  });
  return last;
}

describe("nginx through node restarts (3 nodes)", () => {
  let cluster: Cluster;
  let conv: string;
  let token: string;
  const clients: Client[] = [];
  before(async () => {
    cluster = await startCluster({ nodes: 3, env: CLUSTER_ENV });
    conv = await createConversation(cluster.url, "probe", ["probe"]);
    token = await mintToken("probe");
  });
  after(async () => {
    for (const c of clients) c.socket.close();
    await cluster?.stop();
    await stopAll();
  });
  const open = async (n: number, prefix: string, transports?: ("polling" | "websocket")[]) => {
    const opened: Client[] = [];
    for (let i = 0; i < n; i++) opened.push(await connect(cluster.url, `${prefix}-${i}`, transports));
    clients.push(...opened);
    return opened;
  };
  const closeAll = async () => {
    for (const c of clients.splice(0)) c.socket.close();
    await eventually(async () => total(await counts(cluster)) === 0, 10_000, "every client to be gone");
  };
  // A test that failed midway leaves its clients open: close them, so the next test counts only its own.
  afterEach(async () => {
    if (clients.length === 0) return;
    for (const c of clients.splice(0)) c.socket.close();
    await eventually(async () => total(await counts(cluster)) === 0, 50_000, "the failed test's clients to be gone").catch(() => {});
  });

  test("each node SIGTERMed from outside and started again: no 5xx, and it takes new sessions at once", async () => {
    await open(30, "ws");
    const p = probe(cluster.url, token, conv);
    try {
      for (const node of cluster.nodes) {
        assert.equal(await node.stop("SIGTERM"), 0, `${node.nodeId} drained`);
        await node.restart();
        // Until /readyz answers, the node answers handshakes 503 and nginx passes them on: "at
        // once" means once it is ready, not once it listens.
        await node.waitReady();
        const before = (await node.connections()) ?? 0;
        // Cookie-less handshakes are placed round robin over the ready nodes, but the probe's
        // handshakes take turns too: open clients one by one (at most 15, five rounds of three)
        // until one lands here.
        let now = before;
        for (let i = 0; i < 15 && now <= before; i++) {
          await open(1, `new-${node.nodeId}-${i}`);
          now = (await node.connections()) ?? 0;
        }
        assert.ok(now > before, `${node.nodeId} took no new session right after its restart (${before} -> ${now}): ${JSON.stringify(await counts(cluster))}`);
      }
      await eventually(async () => total(await counts(cluster)) === clients.length, 40_000, "every client connected again");
    } finally {
      const bad = await p.stop();
      assert.ok(p.statuses.length > 50, `probes ran (${p.statuses.length})`);
      assert.deepEqual(bad, [], `nginx answered ${bad.length} of ${p.statuses.length} new requests with 5xx`);
    }
    assert.doesNotMatch(cluster.nginx.errorLog(), /no live upstreams/);
    await closeAll();
  });

  test("the launcher's rolling restart: no 5xx, every client back, connections spread within 1.5×", async () => {
    await open(60, "roll");
    await open(12, "roll-ws", ["websocket"]);
    await eventually(async () => total(await counts(cluster)) === clients.length, 10_000, "every client connected");
    const p = probe(cluster.url, token, conv);
    const fromAccess = cluster.nginx.accessLog().length;
    const pids = cluster.nodes.map((n) => n.pid);
    let report;
    try {
      report = await cluster.rollingRestart();
    } finally {
      const bad = await p.stop();
      assert.deepEqual(bad, [], `nginx answered ${bad.length} of ${p.statuses.length} new requests with 5xx`);
    }
    assert.deepEqual(report.steps.map((s) => s.exitCode), [0, 0, 0], "every node drained and exited 0");
    assert.ok(cluster.nodes.every((n, i) => n.pid !== pids[i]), "every node is a new process");
    assert.deepEqual(cluster.nodes.map((n) => n.nodeId), ["node-1", "node-2", "node-3"], "the surge node is gone");
    const c = await settled(cluster, clients.length);
    assert.ok(clients.every((cl) => cl.disconnects >= 1), "every client was moved off its node");
    const ratio = spreadRatio(Object.values(c));
    assert.ok(ratio <= 1.5, `busiest / least busy ${ratio.toFixed(2)}: ${JSON.stringify(c)}`);
    const fives = cluster.nginx.accessLog().slice(fromAccess).split("\n").filter((l) => /" 5\d\d /.test(l));
    assert.deepEqual(fives, [], "nginx logged no 5xx during the rolling restart");
    await closeAll();
  });

  test("scale out and in: the new node takes sessions at once; removing a loaded node moves only its clients", async () => {
    await open(30, "scale");
    const added = await cluster.addNode();
    const newId = added.steps[0]!.nodeId;
    const fresh = await open(8, "scale-new");
    assert.ok(((await counts(cluster))[newId] ?? 0) >= 1, `the added node ${newId} took new sessions: ${JSON.stringify(await counts(cluster))}`);
    const before = await counts(cluster);
    const gone = "node-2";
    const p = probe(cluster.url, token, conv);
    try {
      await cluster.removeNode(gone);
    } finally {
      const bad = await p.stop();
      assert.deepEqual(bad, [], `nginx answered ${bad.length} of ${p.statuses.length} new requests with 5xx`);
    }
    const after = await settled(cluster, clients.length);
    assert.ok(!(gone in after), "the removed node is out");
    const moved = clients.filter((c) => c.disconnects > 0).length;
    assert.equal(moved, before[gone], `only ${gone}'s ${before[gone]} clients reconnected`);
    assert.ok(fresh.length > 0);
    await closeAll();
  });

  test("reloads that steer placement leave other sessions alone, long-polling ones included", async () => {
    const polling = await open(12, "poll", ["polling"]);
    const ws = await open(12, "steady");
    // Adding and removing an (empty) node reloads nginx with new weights and a new upstream list.
    const added = await cluster.addNode();
    await cluster.removeNode(added.steps[0]!.nodeId);
    await sleep(1500); // a few long-polls after the reloads
    const moved = [...polling, ...ws].filter((c) => c.disconnects > 0).length;
    assert.equal(moved, 0, "no session was moved");
    const reply = await Promise.all(polling.map((c) => c.socket.timeout(5000).emitWithAck("joinConversation", { conversationId: conv }).catch((e: Error) => e.message)));
    assert.ok(reply.every((r) => typeof r === "object"), "every polling session still answers");
    await closeAll();
  });
});
