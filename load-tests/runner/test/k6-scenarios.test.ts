/**
 * Every k6 scenario, run by the shim (./k6-shim; what it does not model is listed in shim.ts)
 * against a real chat node at small sizes: it passes every threshold; no Rate or Trend threshold
 * passes on an empty sink (k6 passes those silently); and handleSummary writes k6's text summary
 * beside the JSON, named with the run id, with no token or setup data in either or on stdout.
 * Counts only: these machines are shared, so no number here is a benchmark.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { startNode, stopAll, tempDir, TEST_SECRET, type NodeHandle } from "@chat/test-kit";
import { explain, filesIn, runK6, scenarioPath, type ShimResult } from "./k6-shim/harness.ts";

/** Small sizes: a few users and seconds per scenario. */
const SIZES: Record<string, Record<string, string>> = {
  "chat-fanout": { USERS: "12", ROOMS: "3", VUS: "2", RATE: "10", DURATION_S: "4" },
  soak: { USERS: "8", ROOMS: "2", VUS: "2", RATE: "6", DURATION_S: "4" },
  "typing-storm": { USERS: "8", ROOMS: "2", VUS: "2", DURATION_S: "3", TYPING_TIMEOUT_MS: "1000" },
  "history-reads": { READERS: "6", ROOMS: "2", MESSAGES: "60", RATE: "20", DURATION_S: "3", LIMIT: "20" },
  "reconnect-storm": { USERS: "9", ROOMS: "3", VUS: "2", CYCLES: "2", CYCLE_S: "3", AWAY_MS: "1000" },
  "connect-storm": { PEAK_RATE: "10", RAMP_S: "2", HOLD_S: "2", DOWN_S: "1", HOLD_MS: "500", TOKEN_POOL: "20" },
  spike: { BASE_RATE: "2", SPIKE_RATE: "15", BASE_S: "2", SPIKE_RAMP_S: "1", SPIKE_HOLD_S: "2", RECOVER_S: "3", HOLD_MS: "1500", USERS: "30", ROOMS: "3" },
  mixed: {
    DURATION_S: "6",
    ...{ CHAT_USERS: "8", CHAT_ROOMS: "2", CHAT_VUS: "2", CHAT_RATE: "6" },
    ...{ TYPING_USERS: "6", TYPING_ROOMS: "2", TYPING_VUS: "1", TYPING_TIMEOUT_MS: "1000" },
    ...{ HISTORY_READERS: "4", HISTORY_ROOMS: "2", HISTORY_MESSAGES: "40", HISTORY_RATE: "10", HISTORY_LIMIT: "10" },
    ...{ RECONNECTS_USERS: "6", RECONNECTS_ROOMS: "2", RECONNECTS_VUS: "1", CYCLE_S: "3", AWAY_MS: "1000" },
  },
};

/** Threshold metrics that are counters: an empty counter is judged (count 0), not skipped. */
const COUNTERS = /^(messages_delivered|duplicate_deliveries|sio_disconnects|dropped_iterations|typing_broadcasts_received)(\{|$)/;
/** Judged only when a connection was lost, which a run against a healthy node does not see (k6-faults.test.ts loses some). */
const ON_LOSS = /^reconnect(_ok)?(\{|$)/;

let node: NodeHandle;
before(async () => {
  node = await startNode({ RATE_LIMIT_DISABLED: "1", TYPING_TIMEOUT_MS: "1000" });
});
after(() => stopAll());

function secretsIn(text: string): string[] {
  // A JWT's header `{"alg"...` encodes to `eyJ`; the secret itself must never appear either.
  return [...text.matchAll(/eyJ[\w-]{10,}\.[\w-]+/g)].map((m) => m[0]).concat(text.includes(TEST_SECRET) ? [TEST_SECRET] : []);
}

describe("k6 scenarios against a real node", () => {
  for (const [name, size] of Object.entries(SIZES)) {
    test(`${name} passes every threshold, none on an empty sink, and leaves its summary beside the JSON`, async () => {
      const dir = tempDir(`k6-${name}-`);
      const runId = `t${Date.now()}`;
      const r: ShimResult = await runK6(scenarioPath(name), {
        BASE_URL: node.url,
        JWT_SECRET: TEST_SECRET,
        RAMP_MS: "1500",
        DRAIN_MS: "1000",
        RUN_ID: runId,
        SUMMARY_DIR: dir,
        ...size,
      });
      assert.equal(r.exitCode, 0, explain(r));
      assert.deepEqual(r.errors, []);
      assert.ok(r.thresholds.length > 0);
      for (const t of r.thresholds) {
        assert.ok(t.ok, `${t.metric} '${t.source}'\n${explain(r)}`);
        if (COUNTERS.test(t.metric)) continue;
        // The fan-out's reconnect_ok has samples only after a loss; the reconnect workload's always.
        const reconnectWorkload = name === "reconnect-storm" || t.metric.includes("scenario:reconnects");
        if (ON_LOSS.test(t.metric) && !reconnectWorkload) continue;
        assert.ok(t.samples > 0, `${t.metric} '${t.source}' passed on no sample at all`);
      }
      for (const s of Object.values(r.scenarios)) assert.equal(s.abandoned, 0);

      const files = filesIn(dir);
      assert.deepEqual(Object.keys(files).sort(), [`k6-${name}-${runId}-summary.json`, `k6-${name}-${runId}-summary.txt`]);
      const text = files[`k6-${name}-${runId}-summary.txt`]!;
      assert.match(text, /█ THRESHOLDS/);
      for (const t of r.thresholds) assert.ok(text.includes(`'${t.source}'`), `the text summary shows ${t.metric} '${t.source}'`);
      // The statistics the thresholds judge are shown with their values, p(99) included.
      if (r.thresholds.some((t) => t.source.startsWith("p(99)"))) assert.match(text, /'p\(99\)<\d+' p\(99\)=[\d.]+(µs|ms|s)/);
      assert.match(text, /█ TOTAL RESULTS/);
      assert.match(text, /iterations\.+:/, "k6's own execution metrics are kept");
      assert.equal(r.summaryStdout, text, "stdout carries the same summary");
      const json = JSON.parse(files[`k6-${name}-${runId}-summary.json`]!) as Record<string, unknown>;
      assert.ok(json.metrics && json.root_group && json.options);
      assert.equal("setup_data" in json, false, "setup_data (every token) is dropped");
      // k6 users look for `checks`: every scenario records named checks, and on a healthy node they
      // pass (a connection attempt retried under a loaded machine may fail one, as the thresholds allow).
      const checks = (json.root_group as { checks: { name: string; passes: number; fails: number }[] }).checks;
      const passes = checks.reduce((a, c) => a + c.passes, 0);
      const fails = checks.reduce((a, c) => a + c.fails, 0);
      assert.ok(checks.length > 0 && checks.every((c) => c.passes > 0) && fails <= 0.01 * (passes + fails), `named checks that pass: ${JSON.stringify(checks)}`);
      for (const c of checks) assert.ok(text.includes(` ${c.name}`), `the text summary shows the check '${c.name}'`);
      for (const [f, body] of Object.entries(files)) assert.deepEqual(secretsIn(body), [], f);
      assert.deepEqual(secretsIn(r.summaryStdout ?? ""), []);
      assert.deepEqual(secretsIn(r.logs.join("\n")), []);
    });
  }

  test("a relative SUMMARY_DIR is taken from the working directory, as k6 writes there", async () => {
    const cwd = tempDir("k6-cwd-");
    fs.mkdirSync(path.join(cwd, "out"));
    const r = await runK6(
      scenarioPath("history-reads"),
      { BASE_URL: node.url, JWT_SECRET: TEST_SECRET, RUN_ID: "rel1", SUMMARY_DIR: "out", ...SIZES["history-reads"], DURATION_S: "1" },
      { cwd },
    );
    assert.equal(r.exitCode, 0, explain(r));
    assert.deepEqual(Object.keys(filesIn(path.join(cwd, "out"))).sort(), ["k6-history-reads-rel1-summary.json", "k6-history-reads-rel1-summary.txt"]);
    assert.match(r.summaryStdout ?? "", /SUMMARY_DIR is relative to the working directory/);
  });
});
