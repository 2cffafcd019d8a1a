/**
 * The load runner, briefly and with small numbers, against the real chat node and the two peers
 * of the benchmark. Counts only: these machines are shared, so nothing here asserts a speed.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { startNode, stopAll, tempDir, TEST_SECRET, type NodeHandle } from "@chat/test-kit";
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

test("pnpm bench, tiny: two ladders per system in alternating order, the median reported with every ladder's figure", () => {
  const out = tempDir("chat-bench-out-");
  const bench = path.join(import.meta.dirname, "../src/bench.ts");
  const r = spawnSync(
    process.execPath,
    [bench, "--systems", "seed,raw", "--ladders", "2", "--users", "20", "--rooms", "4", "--rates", "20,40", "--step-seconds", "1", "--half-rounds", "0", "--idle", "0", "--out", out],
    { encoding: "utf8", timeout: 180_000 },
  );
  assert.equal(r.status, 0, r.stderr.slice(-2000));
  const order = [...r.stderr.matchAll(/ladder (\d)\/2: (\w+)/g)].map((m) => `${m[1]}:${m[2]}`);
  assert.deepEqual(order, ["1:seed", "1:raw", "2:raw", "2:seed"]);
  const json = fs.readdirSync(out).find((f) => f.endsWith(".json"));
  assert.ok(json, "a JSON result");
  const result = JSON.parse(fs.readFileSync(path.join(out, json), "utf8")) as { systems: { system: string; ladders?: number[]; saturation?: { deliveriesPerSec: number } }[] };
  for (const s of result.systems) {
    assert.equal(s.ladders?.length, 2, s.system);
    // 40 msg/s in rooms of 5 is 200 deliveries/s: both ladders pass every step.
    assert.deepEqual(s.ladders, [200, 200], s.system);
    assert.equal(s.saturation?.deliveriesPerSec, 200);
  }
  const md = fs.readFileSync(path.join(out, json.replace(/json$/, "md")), "utf8");
  assert.match(md, /ladders 200, 200/);
  assert.match(md, /raw ws floor: 1\.00×, 1\.00×/);
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

test("pnpm bench --help prints the options and starts nothing; an unknown option is an error", () => {
  const bench = path.join(import.meta.dirname, "..", "src", "bench.ts");
  const help = spawnSync(process.execPath, [bench, "--help"], { encoding: "utf8", timeout: 20_000 });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /usage: pnpm bench/);
  assert.match(help.stdout, /--ladders/);
  assert.doesNotMatch(help.stdout + help.stderr, /offering|connections in/, "no system was started");
  const wrong = spawnSync(process.execPath, [bench, "--user", "10"], { encoding: "utf8", timeout: 20_000 });
  assert.equal(wrong.status, 2);
  assert.match(wrong.stderr, /--user/);
  assert.match(wrong.stderr, /usage: pnpm bench/);
});
