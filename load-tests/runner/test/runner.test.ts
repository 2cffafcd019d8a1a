/**
 * The load runner, briefly and with small numbers, against the real chat node and the two peers
 * of the benchmark. Counts only: these machines are shared, so nothing here asserts a speed.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { startNode, stopAll, TEST_SECRET, type NodeHandle } from "@chat/test-kit";
import { buildPlan } from "../src/plan.ts";
import { LoadSession } from "../src/session.ts";
import { launch } from "../src/launch.ts";
import { Histogram } from "../src/hist.ts";

async function run(target: "chat" | "seed" | "raw", url: string, workers: number, serverPids: number[] = []) {
  const plan = await buildPlan({ target, url, users: 12, rooms: 3, secret: TEST_SECRET });
  const session = new LoadSession(plan, { workers, serverPids });
  try {
    const connect = await session.connect();
    const step = await session.step(12, 1);
    return { connect, step };
  } finally {
    await session.close();
  }
}

describe("load runner", () => {
  let node: NodeHandle;
  before(async () => {
    node = await startNode({ RATE_LIMIT_DISABLED: "1" });
  });
  after(() => stopAll());

  test("in-process: every message sent reaches every member of its conversation", async () => {
    const { connect, step } = await run("chat", node.url, 0, [node.pid]);
    assert.equal(connect.connections, 12);
    assert.equal(connect.connectErrors, 0);
    assert.ok((connect.serverRssAfter ?? 0) > 0, "reads the server's RSS");
    assert.equal(step.sent, 12);
    assert.equal(step.expected, 12 * 4, "rooms of 4: each message is expected 4 times");
    assert.equal(step.delivered, step.expected);
    assert.equal(step.deliveryRatio, 1);
    assert.equal(step.errors, 0);
    assert.equal(step.latencyMs.count, step.delivered);
  });

  test("two forked worker processes add up to the same counts", async () => {
    const { connect, step } = await run("chat", node.url, 2);
    assert.equal(connect.connections, 12);
    assert.equal(step.sent, 12);
    assert.equal(step.delivered, 48);
    assert.equal(step.deliveryRatio, 1);
  });

  test("the seed reference and the raw floor carry the same load", async () => {
    for (const kind of ["seed", "raw"] as const) {
      const server = await launch(kind);
      try {
        const { connect, step } = await run(kind, server.url, 0, server.pids);
        assert.equal(connect.connections, 12, kind);
        assert.equal(step.sent, 12, kind);
        assert.equal(step.delivered, 48, kind);
      } finally {
        await server.stop();
      }
    }
  });

  test("the CLI prints a JSON result", () => {
    const cli = path.join(import.meta.dirname, "../src/cli.ts");
    const r = spawnSync(
      process.execPath,
      [cli, "--url", node.url, "--users", "10", "--rooms", "2", "--rate", "10", "--duration", "1", "--workers", "1", "--secret", TEST_SECRET, "--server-pid", String(node.pid)],
      { encoding: "utf8", timeout: 120_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, number>;
    assert.equal(out.connections, 10);
    assert.equal(out.sent, 10);
    assert.equal(out.expected, 50);
    assert.equal(out.delivered, 50);
    assert.equal(out.deliveryRatio, 1);
    for (const k of ["deliveriesPerSec", "serverRssPerConnection", "connectWallMs"]) assert.equal(typeof out[k], "number", k);
  });
});

test("histogram quantiles", () => {
  const h = new Histogram();
  for (let i = 1; i <= 1000; i++) h.record(i / 10); // 0.1 .. 100 ms
  const s = h.summary();
  assert.equal(s.count, 1000);
  assert.ok(Math.abs(s.p50 - 50) <= 0.2, `p50 ${s.p50}`);
  assert.ok(Math.abs(s.p99 - 99) <= 0.2, `p99 ${s.p99}`);
  assert.equal(s.max, 100);
  const merged = new Histogram();
  merged.addSparse(h.toSparse());
  assert.deepEqual(merged.summary(), s);
});
