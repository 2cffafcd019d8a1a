/**
 * Every scenario of `pnpm bench:faults`, short: the same runner (load-tests/runner/src/faults-run.ts)
 * against a real 3-node cluster behind nginx, with 6 conversations of 3 SDK-like (@chat/client) and
 * 2 seed-like clients under a steady send load, through kill -9 of a node, SIGTERM of a node, a
 * rolling restart, Redis kill -9 and restart, and scale 3 → 4 → 3. What a user relies on: every
 * send acknowledged, nothing acknowledged lost, nothing stored twice, no gap in the store, SDK-like
 * clients end with every message, nginx answers no 502 (no 5xx at all during the rolling restart),
 * and after the rolling restart no node holds more than 1.5 times the connections of another.
 * After the Redis restart seed-like clients end gap-free too: the node repairs the gap itself.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { TEST_SECRET, stopAll } from "@chat/test-kit";
import { startCluster, type Cluster } from "../../../infra/cluster/cluster.ts";
import { runScenario, type FaultParams, type ScenarioResult } from "../src/faults-run.ts";
import { spreadOf } from "../src/faults-report.ts";
import { scenarios } from "../src/faults-scenarios.ts";

/** The nodes' settings, as the chat node's cluster tests use them: short timeouts, no rate limits. */
const CLUSTER_ENV = {
  JWT_SECRET: TEST_SECRET,
  LOG_LEVEL: "warn",
  TYPING_TIMEOUT_MS: "400",
  SHUTDOWN_TIMEOUT_MS: "5000",
  PRESENCE_TTL_MS: "2000",
  RATE_LIMIT_DISABLED: "1",
};

const PARAMS: FaultParams = {
  secret: CLUSTER_ENV.JWT_SECRET,
  conversations: 6,
  sdkPerConversation: 3,
  seedPerConversation: 2,
  rate: 40,
  beforeMs: 1500,
  afterMs: 2000,
  settleMs: 20_000,
};

const byId = new Map(scenarios({ downMs: 1500, redisDownMs: 3000, scaledMs: 2000 }).map((s) => [s.id, s]));

/** The report's facts, printed when an assertion fails. */
function facts(r: ScenarioResult): string {
  return JSON.stringify({ sent: r.sent, acked: r.acknowledged, failed: r.failed, failures: r.failures, sdk: r.sdk, seed: r.seed, nginx: r.nginx, after: r.connectionsAfter });
}

function assertNothingLost(r: ScenarioResult): void {
  assert.ok(r.sent > 50, `load ran: ${r.sent} sends`);
  assert.equal(r.failed, 0, `every send acknowledged in the end: ${facts(r)}`);
  assert.equal(r.acknowledged, r.sent);
  assert.equal(r.ackedLost, 0, `acknowledged but not stored: ${facts(r)}`);
  assert.equal(r.storedTwice, 0, `stored twice: ${facts(r)}`);
  assert.equal(r.storeSeqGaps, 0, "the store's seqs are 1..N");
  assert.equal(r.stored, r.sent, "one stored message per send");
  assert.equal(r.sdk.clientsWithGaps, 0, `SDK-like clients with gaps: ${facts(r)}`);
  assert.equal(r.nginx.status502, 0, `nginx answered 502: ${r.nginx.samples.join("\n")}`);
}

describe("bench:faults scenarios, short (3 nodes behind nginx, SDK-like and seed-like clients)", () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster({ nodes: 3, env: CLUSTER_ENV });
  });
  after(async () => {
    await cluster?.stop();
    await stopAll();
  });
  const run = (id: string) => runScenario(cluster, byId.get(id)!, PARAMS);

  test("kill -9 of a node: nothing acknowledged lost or doubled, SDK-like clients whole, reconnected", async () => {
    const r = await run("kill");
    assertNothingLost(r);
    assert.ok(r.sdk.reconnects.count > 0, "the killed node's clients reconnected");
    assert.equal(r.sdk.stillDisconnected + r.seed.stillDisconnected, 0, "every client is connected again");
  });

  test("SIGTERM of a node: the same, and no 5xx from nginx", async () => {
    const r = await run("sigterm");
    assertNothingLost(r);
    assert.equal(r.nginx.status5xx, 0, r.nginx.samples.join("\n"));
    assert.ok(r.sdk.reconnects.count > 0, "the drained node's clients reconnected");
  });

  test("rolling restart: no 5xx from nginx, and connections spread again", async () => {
    const r = await run("rolling");
    assertNothingLost(r);
    assert.equal(r.nginx.status5xx, 0, r.nginx.samples.join("\n"));
    assert.equal(r.nginx.noLiveUpstreams, 0);
    assert.ok(r.sdk.reconnects.count >= r.sdk.clients, "every client was moved at least once");
    const spread = spreadOf(r);
    assert.ok(spread <= 1.5, `busiest / least busy node ${spread.toFixed(2)}: ${JSON.stringify(r.connectionsAfter)}`);
    assert.deepEqual(Object.keys(r.connectionsAfter).sort(), ["node-1", "node-2", "node-3"], "the surge node is gone again");
  });

  test("Redis kill -9, back after 3 s: sends stored and acknowledged throughout, SDK-like clients whole", async () => {
    const r = await run("redis");
    assertNothingLost(r);
    assert.equal(r.nginx.status5xx, 0, r.nginx.samples.join("\n"));
    assert.equal(r.sdk.reconnects.count + r.seed.reconnects.count, 0, "nobody was disconnected");
    redisSeed = r;
  });

  let redisSeed: ScenarioResult | undefined;
  test("Redis kill -9, back after 3 s: seed-like clients end with every message too", () => {
    assert.ok(redisSeed, "the Redis scenario ran");
    assert.equal(redisSeed.seed.clientsWithGaps, 0, `seed-like clients with gaps: ${facts(redisSeed)}`);
  });

  test("scale 3 → 4 → 3: a node added live, a loaded one removed, nothing lost", async () => {
    const r = await run("scale");
    assertNothingLost(r);
    assert.equal(r.nginx.status5xx, 0, r.nginx.samples.join("\n"));
    assert.equal(Object.keys(r.connectionsAfter).length, 3);
    assert.ok(!("node-2" in r.connectionsAfter), "the removed node is out");
    assert.ok(r.seed.reconnects.count + r.sdk.reconnects.count > 0, "the removed node's clients reconnected");
  });
});
