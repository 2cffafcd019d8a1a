/**
 * Every k6 scenario's `options`, as k6 reads them before it starts: each script's init context is
 * evaluated by the shim (./k6-shim) with the variables given, and the result is held to what k6
 * checks at start (thresholds over metrics the script declares or k6 builds in, with an
 * aggregation their type has; exit 104 otherwise) and to what a k6 user relies on: every statistic
 * a threshold judges is in `summaryTrendStats`, so the summary shows it; each executor suits its
 * scenario's purpose; the runs that make no sense to continue abort; a malformed variable stops
 * the run in the init context, naming itself.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { K6_DIR, explain, runK6, scenarioPath, type ShimResult } from "./k6-shim/harness.ts";
import { parseThreshold } from "./k6-shim/shim.ts";

const SCENARIOS = fs
  .readdirSync(path.join(K6_DIR, "scenarios"))
  .filter((f) => f.endsWith(".js"))
  .map((f) => f.slice(0, -3))
  .sort();

type Scenario = Record<string, unknown> & { executor: string };
const scenariosOf = (r: ShimResult) => r.options.scenarios as Record<string, Scenario>;
const thresholdsOf = (r: ShimResult) => r.options.thresholds as Record<string, unknown[]>;
const options = (name: string, env: Record<string, string> = {}) => runK6(scenarioPath(name), env, { optionsOnly: true });

describe("k6 options", () => {
  test("the suite has the scenarios the README names, a true spike and a mixed workload among them", () => {
    assert.deepEqual(SCENARIOS, ["chat-fanout", "connect-storm", "history-reads", "mixed", "reconnect-storm", "soak", "spike", "typing-storm"]);
  });

  for (const name of SCENARIOS) {
    test(`${name}: thresholds name declared or built-in metrics with a valid aggregation, and the summary shows every statistic they judge`, async () => {
      const r = await options(name);
      assert.equal(r.exitCode, 0, explain(r));
      assert.deepEqual(r.configErrors, []);
      const stats = r.options.summaryTrendStats as string[] | undefined;
      assert.ok(Array.isArray(stats), "summaryTrendStats is set (k6's default has no p(99))");
      const types = new Map([...r.definedMetrics.map((d) => [d.name, d.type] as const), ["http_req_duration", "trend"], ["iteration_duration", "trend"]]);
      const th = thresholdsOf(r);
      assert.ok(Object.keys(th).length > 0, "a scenario without thresholds cannot fail");
      for (const [key, list] of Object.entries(th)) {
        const metric = key.replace(/\{.*$/, "");
        for (const t of list) {
          const p = parseThreshold(t);
          if (types.get(metric) !== "trend") continue;
          const stat = p.method === "p" ? `p(${p.pct})` : p.method;
          assert.ok(stats.includes(stat), `${key} '${p.source}' judges ${stat}, which summaryTrendStats ${JSON.stringify(stats)} does not show`);
        }
      }
      for (const s of ["med", "p(95)", "p(99)", "max"]) assert.ok(stats.includes(s), `the summary shows ${s}`);
    });
  }

  test("a threshold over an undeclared metric or with an aggregation its type lacks is refused before the run (k6's exit 104)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k6-bad-"));
    try {
      const file = path.join(dir, "bad.js");
      fs.writeFileSync(
        file,
        'import { Rate } from "k6/metrics";\nconst r = new Rate("my_rate");\nexport const options = { thresholds: { my_rat: ["rate>0.9"], my_rate: ["p(99)<5"] } };\nexport default function () { r.add(true); }\n',
      );
      const r = await runK6(file, {}, { optionsOnly: true });
      assert.equal(r.exitCode, 104);
      assert.equal(r.configErrors.length, 2, r.configErrors.join("\n"));
      assert.match(r.configErrors.join("\n"), /no metric name "my_rat"/);
      assert.match(r.configErrors.join("\n"), /unsupported aggregation method p on a rate/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("executors suit their purpose", async () => {
    const byName = Object.fromEntries(await Promise.all(SCENARIOS.map(async (n) => [n, scenariosOf(await options(n))] as const)));
    // Connections held through the whole run: one long iteration per VU (a k6/websockets socket
    // keeps its iteration alive until closed).
    for (const n of ["chat-fanout", "soak", "typing-storm", "reconnect-storm"]) {
      const [sc] = Object.values(byName[n]!);
      assert.equal(sc!.executor, "per-vu-iterations", n);
      assert.equal(sc!.iterations, 1, n);
    }
    // Open models: arrivals at a rate, whatever the server's pace.
    assert.equal(byName["connect-storm"]!.storm!.executor, "ramping-arrival-rate");
    assert.equal(byName["history-reads"]!.reads!.executor, "constant-arrival-rate");
    const spike = byName.spike!.spike!;
    assert.equal(spike.executor, "ramping-arrival-rate");
    const stages = spike.stages as { target: number; duration: string }[];
    const base = spike.startRate as number;
    const jump = stages.find((s) => s.target >= 10 * base);
    assert.ok(jump, `a stage at ten times the base rate: ${JSON.stringify(stages)}`);
    assert.ok(parseInt(jump.duration) <= 5, `the jump takes seconds, not a ramp: ${jump.duration}`);
    assert.equal(stages.at(-1)!.target, base, "the spike ends with a recovery at the base rate");
    // Mixed: four workloads, each its own exec function and tag, with thresholds of its own.
    const mixed = byName.mixed!;
    assert.deepEqual(Object.keys(mixed).sort(), ["chat", "history", "reconnects", "typers"]);
    const th = thresholdsOf(await options("mixed"));
    for (const [n, sc] of Object.entries(mixed)) {
      assert.equal(sc.exec, n);
      assert.deepEqual(sc.tags, { workload: n });
      assert.ok(Object.keys(th).some((k) => k.includes(`scenario:${n}`)), `thresholds on {scenario:${n}}`);
    }
    assert.equal(mixed.history!.executor, "constant-arrival-rate");
    // k6 reads these fields as integers (null.Int): a fraction would fail its config parsing.
    for (const [n, scs] of Object.entries(byName)) {
      for (const sc of Object.values(scs)) {
        for (const f of ["vus", "iterations", "rate", "startRate", "preAllocatedVUs", "maxVUs"]) if (sc[f] !== undefined) assert.ok(Number.isInteger(sc[f]), `${n}.${f} = ${String(sc[f])}`);
        for (const s of (sc.stages as { target: number }[] | undefined) ?? []) assert.ok(Number.isInteger(s.target), `${n} stage target ${s.target}`);
      }
    }
  });

  test("arrival-rate scenarios preallocate every VU they may need, so the rate asked is the rate offered", async () => {
    const storm = (env: Record<string, string>) => options("connect-storm", env).then((r) => scenariosOf(r).storm!);
    const dflt = await storm({});
    assert.equal(dflt.preAllocatedVUs, dflt.maxVUs, "PRE_VUS defaults to MAX_VUS");
    assert.ok((dflt.maxVUs as number) >= 200 * (5 + 1), "MAX_VUS covers PEAK_RATE × (HOLD_MS/1000 + 1)");
    const small = await storm({ MAX_VUS: "50" });
    assert.equal(small.preAllocatedVUs, 50, "a smaller MAX_VUS lowers the preallocation with it");
    assert.equal((await storm({ MAX_VUS: "50", PRE_VUS: "500" })).preAllocatedVUs, 50, "never more preallocated than the maximum");
    assert.equal((await storm({ PEAK_RATE: "500", HOLD_MS: "1000" })).maxVUs, 1000);
    const reads = scenariosOf(await options("history-reads", { RATE: "400" })).reads!;
    assert.equal(reads.preAllocatedVUs, reads.maxVUs);
    const spike = scenariosOf(await options("spike")).spike!;
    assert.equal(spike.preAllocatedVUs, spike.maxVUs);
    for (const n of ["connect-storm", "history-reads", "spike"]) {
      const th = thresholdsOf(await options(n));
      assert.ok(Object.keys(th).some((k) => k.startsWith("dropped_iterations")), `${n} fails on dropped iterations`);
    }
  });

  test("runs where going on measures nothing stop early (abortOnFail with a grace period)", async () => {
    for (const n of ["chat-fanout", "soak", "connect-storm", "spike", "mixed", "typing-storm", "history-reads", "reconnect-storm"]) {
      const th = thresholdsOf(await options(n));
      const aborting = Object.entries(th).flatMap(([k, list]) => list.map((t) => [k, parseThreshold(t)] as const)).filter(([, t]) => t.abortOnFail);
      assert.ok(aborting.length > 0, `${n} has an abortOnFail threshold`);
      for (const [k, t] of aborting) assert.ok(t.delayAbortEvalMs > 0, `${n}: ${k} '${t.source}' waits before judging`);
    }
    const soak = thresholdsOf(await options("soak"));
    assert.ok(soak.delivery_ratio!.some((t) => parseThreshold(t).abortOnFail), "a soak with broken delivery stops");
  });

  test("typing-storm bounds typing broadcasts from both sides, and stopTyping's effect", async () => {
    const th = thresholdsOf(await options("typing-storm"));
    assert.ok(th.typing_pairs_complete, "lower bound: every pair sees true, then false");
    assert.match(String(th.typing_broadcasts_received), /^count<=\d+$/);
    assert.ok(th.typing_stop_delay, "false follows stopTyping at once, not at the timeout");
    // 500 users in 50 rooms: 50 × 10 × 9 pairs, one true and one false each, a 1.5 margin.
    assert.equal(th.typing_broadcasts_received![0], `count<=${Math.ceil(1.5 * 2 * 50 * 10 * 9)}`);
  });

  test("reconnect-storm cannot pass on empty catch-ups, nor on a run where nothing went away", async () => {
    const client = thresholdsOf(await options("reconnect-storm"));
    assert.ok(client.catch_up_nonempty, "DROP=client: each re-join must bring messages back");
    assert.ok(client.catch_up_complete);
    const server = thresholdsOf(await options("reconnect-storm", { DROP: "server" }));
    assert.deepEqual(server.sio_disconnects, ["count>=1"]);
  });

  test("the fan-out's delivery cannot pass on nothing, and its latency threshold is on live deliveries", async () => {
    for (const n of ["chat-fanout", "soak"]) {
      const th = thresholdsOf(await options(n));
      assert.deepEqual(th.messages_delivered, ["count>0"]);
      assert.ok(th["e2e_latency{via:live}"]);
      assert.ok(th.delivery_ratio);
      assert.ok(th.sio_disconnects);
    }
    assert.deepEqual(thresholdsOf(await options("chat-fanout", { MAX_DISCONNECTS: "7" })).sio_disconnects, ["count<=7"]);
  });

  test("a malformed variable stops the init context with its name (k6's exit 107), before any load", async () => {
    for (const [n, env, re] of [
      ["chat-fanout", { RATE: "fast" }, /RATE=fast must be an integer/],
      ["chat-fanout", { USERS: "10", ROOMS: "20" }, /USERS \(10\) must be at least ROOMS/],
      ["connect-storm", { HOLD_MS: "-5" }, /HOLD_MS=-5/],
      ["reconnect-storm", { DROP: "sometimes" }, /DROP=sometimes must be one of client, server/],
      ["reconnect-storm", { AWAY_MS: "20000" }, /AWAY_MS .* must be shorter than CYCLE_S/],
      ["history-reads", { LIMIT: "500" }, /LIMIT must be at most 200/],
      ["typing-storm", { RECONNECT: "yes" }, /RECONNECT=yes must be 0 or 1/],
      ["spike", { RUN_ID: "a b" }, /RUN_ID=a b must be/],
    ] as const) {
      const r = await options(n, env);
      assert.equal(r.exitCode, 107, `${n} ${JSON.stringify(env)}: ${explain(r)}`);
      assert.match(r.errors.join("\n"), re);
    }
  });

  test("a missing absolute SUMMARY_DIR stops the run before it starts, naming the variable", async () => {
    const r = await options("history-reads", { SUMMARY_DIR: "/nonexistent/k6-results" });
    assert.equal(r.exitCode, 107);
    assert.match(r.errors.join("\n"), /SUMMARY_DIR=\/nonexistent\/k6-results does not exist/);
    const file = path.join(import.meta.dirname, "k6-options.test.ts");
    assert.equal((await options("history-reads", { SUMMARY_DIR: `${file}/sub` })).exitCode, 107, "a path through a file is no directory either");
    assert.equal((await options("history-reads", { SUMMARY_DIR: import.meta.dirname })).exitCode, 0);
  });
});
