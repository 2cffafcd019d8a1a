/**
 * The k6 scenarios fail when they should, run by the shim (./k6-shim) against real nodes that are
 * killed mid-run, and against deliberately wrong typing servers (fixtures/typing-peer.ts):
 * - typing-storm fails a server that broadcasts no typing, one that re-broadcasts every event, and
 *   one that ends typing only at its timeout;
 * - chat-fanout tells a cluster that comes back (users reconnect with backoff, catch up, lose
 *   nothing) from one that stays dead (the run stops early through abortOnFail, exit 99), on one
 *   node restarted in place and on two nodes behind nginx with one killed;
 * - reconnect-storm DROP=server passes when a node goes away and comes back, and fails a run in
 *   which nothing went away.
 * The kills wait for traffic the node reports (chat_messages_stored_total), not for a clock.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startNode, stopAll, tempDir, TEST_SECRET, freePort, type NodeHandle } from "@chat/test-kit";
import { startCluster, type Cluster } from "../../../infra/cluster/cluster.ts";
import { explain, failed, runK6, scenarioPath, storedOn, until } from "./k6-shim/harness.ts";
import { startTypingPeer, type TypingMode } from "./fixtures/typing-peer.ts";

after(() => stopAll());

const FANOUT = { USERS: "12", ROOMS: "3", VUS: "2", RATE: "10", RAMP_MS: "1500", DRAIN_MS: "2000", DELIVERY_TIMEOUT_MS: "15000", SEND_TIMEOUT_MS: "15000" };
/** A node away for seconds delays what was sent meanwhile: the latency budgets are not what these runs judge. */
const LENIENT = { P95_MS: "60000", P99_MS: "60000", ACK_P99_MS: "60000" };

async function nodeAt(port: number, dataDir: string): Promise<NodeHandle> {
  return startNode({ RATE_LIMIT_DISABLED: "1", PORT: String(port), DATA_DIR: dataDir });
}

/**
 * Runs a scenario planned for 40 s against the node, kills the node (SIGKILL) once it has stored
 * `stored` messages, and expects the run to stop early through abortOnFail: exit 99, before its window.
 */
async function killedMidRun(node: NodeHandle, scenario: string, env: Record<string, string>, stored: number, what: string) {
  const planned = 40_000;
  const t0 = Date.now();
  const running = runK6(scenarioPath(scenario), {
    BASE_URL: node.url,
    JWT_SECRET: TEST_SECRET,
    ...env,
    DURATION_S: String(planned / 1000),
    ABORT_GRACE_MS: "3000",
    SUMMARY_DIR: tempDir(`k6-dead-${scenario}-out-`),
  });
  await until(async () => (await storedOn(node.url)) >= stored, what);
  await node.stop("SIGKILL");
  const r = await running;
  assert.equal(r.exitCode, 99, explain(r));
  assert.ok(Date.now() - t0 < planned, `stopped before its ${planned / 1000} s window ended`);
  return r;
}

describe("typing-storm against wrong typing servers", () => {
  const run = async (mode: TypingMode) => {
    const peer = await startTypingPeer(mode, 1500);
    try {
      return await runK6(scenarioPath("typing-storm"), {
        BASE_URL: peer.url,
        JWT_SECRET: TEST_SECRET,
        USERS: "8",
        ROOMS: "2",
        VUS: "2",
        DURATION_S: "3",
        RAMP_MS: "1000",
        TYPING_TIMEOUT_MS: "1500",
        SUMMARY_DIR: tempDir("k6-typing-peer-"),
      });
    } finally {
      await peer.close();
    }
  };

  test("no typing broadcast at all: the pairs never see true then false", async () => {
    const r = await run("none");
    assert.equal(r.exitCode, 99, explain(r));
    assert.deepEqual(failed(r), ["typing_pairs_complete 'rate>=0.99'"]);
    assert.equal(r.metrics.typing_pairs_complete!.values.rate, 0);
  });

  test("every typing event re-broadcast: more broadcasts than one true and one false per pair", async () => {
    const r = await run("every");
    assert.equal(r.exitCode, 99, explain(r));
    assert.deepEqual(failed(r), [`typing_broadcasts_received '${r.thresholds.find((t) => t.metric === "typing_broadcasts_received")!.source}'`]);
  });

  test("typing ended only by the timeout, not by stopTyping: false comes late", async () => {
    const r = await run("timeout");
    assert.equal(r.exitCode, 99, explain(r));
    assert.deepEqual(failed(r), ["typing_stop_delay 'p(99)<750'"]);
    assert.ok(r.metrics.typing_stop_delay!.values.min! > 750, `every false came late: ${JSON.stringify(r.metrics.typing_stop_delay)}`);
  });
});

describe("chat-fanout when a node dies", () => {
  test("without reconnection a dead node stops the run early (abortOnFail), exit 99", async () => {
    const port = await freePort();
    const node = await nodeAt(port, tempDir("k6-dead-"));
    const r = await killedMidRun(node, "chat-fanout", { ...FANOUT, RECONNECT: "0" }, 10, "the first messages");
    assert.match(r.abortedBy ?? "", /^threshold (send_ok|delivery_ratio)/);
    assert.equal(r.metrics.sio_disconnects!.values.count, 12, "every user's connection was lost");
    assert.ok(failed(r).includes("sio_disconnects 'count<=0'"));
  });

  test("history-reads against a node that dies stops early on failed reads (abortOnFail), exit 99", async () => {
    const node = await nodeAt(await freePort(), tempDir("k6-dead-reads-"));
    const r = await killedMidRun(node, "history-reads", { READERS: "6", ROOMS: "2", MESSAGES: "60", RATE: "20", LIMIT: "20" }, 120, "setup's seeding");
    assert.match(r.abortedBy ?? "", /^threshold http_req_failed/);
  });

  test("a node that comes back: every user reconnects with backoff and catches up, nothing is lost", async () => {
    const port = await freePort();
    const dataDir = tempDir("k6-back-");
    const node = await nodeAt(port, dataDir);
    const running = runK6(scenarioPath("chat-fanout"), {
      BASE_URL: node.url,
      JWT_SECRET: TEST_SECRET,
      ...FANOUT,
      ...LENIENT,
      DURATION_S: "10",
      MAX_DISCONNECTS: "12",
      SUMMARY_DIR: tempDir("k6-back-out-"),
    });
    await until(async () => (await storedOn(node.url)) >= 10, "the first messages");
    await node.stop("SIGKILL");
    await nodeAt(port, dataDir);
    const r = await running;
    assert.equal(r.exitCode, 0, explain(r));
    const m = r.metrics;
    assert.equal(m.sio_disconnects!.values.count, 12);
    assert.deepEqual({ passes: m.reconnect_ok!.values.passes, fails: m.reconnect_ok!.values.fails }, { passes: 12, fails: 0 });
    assert.equal(m.catch_up_complete!.values.rate, 1);
    assert.equal(m.catch_up_complete!.samples, 12);
    assert.equal(m.messages_missing?.values.count ?? 0, 0, "no message missing (the counter never moved)");
    assert.equal(m.send_ok!.values.rate, 1, "sends made while the node was away were retried on the new connection");
    assert.equal(m["sio_connect_ok{attempt:initial}"]!.values.passes, 12, "every first connection succeeded");
    assert.equal(m.duplicate_deliveries!.values.count, 0, "retried sends were not stored twice");
  });

  test("two nodes behind nginx, one killed: its users fail over to the other and lose nothing", async () => {
    let cluster: Cluster | undefined;
    try {
      cluster = await startCluster({ nodes: 2, env: { JWT_SECRET: TEST_SECRET, RATE_LIMIT_DISABLED: "1", LOG_LEVEL: "warn" } });
      const [victim, survivor] = cluster.nodes as [Cluster["nodes"][number], Cluster["nodes"][number]];
      const running = runK6(scenarioPath("chat-fanout"), {
        BASE_URL: cluster.url,
        JWT_SECRET: TEST_SECRET,
        ...FANOUT,
        ...LENIENT,
        DURATION_S: "10",
        MAX_DISCONNECTS: "12",
        SUMMARY_DIR: tempDir("k6-failover-out-"),
      });
      await until(async () => (await storedOn(victim.url)) + (await storedOn(survivor.url)) >= 10, "the first messages");
      await victim.stop("SIGKILL");
      const r = await running;
      assert.equal(r.exitCode, 0, explain(r));
      const lost = r.metrics.sio_disconnects!.values.count!;
      assert.ok(lost >= 1 && lost < 12, `some users, not all, were on the killed node: ${lost}`);
      assert.equal(r.metrics.reconnect_ok!.values.passes, lost);
      assert.equal(r.metrics.messages_missing?.values.count ?? 0, 0, "no message missing (the counter never moved)");
      assert.equal(r.metrics.delivery_ratio!.values.rate, 1);
    } finally {
      await cluster?.stop();
    }
  });
});

describe("reconnect-storm with DROP=server", () => {
  const env = (url: string) => ({
    BASE_URL: url,
    JWT_SECRET: TEST_SECRET,
    DROP: "server",
    USERS: "9",
    ROOMS: "3",
    VUS: "2",
    DURATION_S: "8",
    SEND_INTERVAL_MS: "300",
    RAMP_MS: "1500",
    DRAIN_MS: "2000",
    DELIVERY_TIMEOUT_MS: "15000",
    SEND_TIMEOUT_MS: "15000",
    SUMMARY_DIR: tempDir("k6-drop-server-"),
  });

  test("a run in which no node went away measured nothing, and fails on that alone", async () => {
    const node = await nodeAt(await freePort(), tempDir("k6-calm-"));
    const r = await runK6(scenarioPath("reconnect-storm"), { ...env(node.url), DURATION_S: "2" });
    assert.equal(r.exitCode, 99, explain(r));
    assert.deepEqual(failed(r), ["sio_disconnects 'count>=1'"]);
  });

  test("a node restarted mid-run: every user comes back with backoff and gets exactly what it missed", async () => {
    const port = await freePort();
    const dataDir = tempDir("k6-restart-");
    const node = await nodeAt(port, dataDir);
    const running = runK6(scenarioPath("reconnect-storm"), env(node.url));
    await until(async () => (await storedOn(node.url)) >= 6, "the first messages");
    await node.stop("SIGKILL");
    await nodeAt(port, dataDir);
    const r = await running;
    assert.equal(r.exitCode, 0, explain(r));
    assert.equal(r.metrics.sio_disconnects!.values.count, 9);
    assert.equal(r.metrics.catch_up_complete!.samples, 9);
    assert.equal(r.metrics.messages_missing?.values.count ?? 0, 0, "no message missing (the counter never moved)");
  });
});
