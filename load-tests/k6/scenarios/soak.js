/**
 * Soak: the fan-out shape at a modest rate for a long time (default 30 minutes), to catch leaks,
 * slow drifts in latency and lost messages that only show over time. Watch the nodes' RSS and
 * event-loop lag in Grafana beside k6's own series (remote write). It stops early (exit 99) once
 * delivery, sends or connections are broken: half an hour of a dead cluster measures nothing.
 *   k6 run -e BASE_URL=... -e JWT_SECRET=... load-tests/k6/scenarios/soak.js
 */
import { SUMMARY_TREND_STATS, envInt, runIdForSetup } from "../lib/config.js";
import { fanoutConfig, fanoutIteration, fanoutScenario, fanoutSetup, fanoutThresholds } from "../lib/fanout.js";
import { makeHandleSummary, offeredLine } from "../lib/summary.js";

const cfg = fanoutConfig("", { users: 2000, rooms: 400, vus: 20, rate: 100, durationS: 1800, rampMs: 30000 });

// chat-fanout's thresholds, a stricter delivery and send budget, and a bound on the worst latency.
export const options = {
  setupTimeout: "120s",
  summaryTrendStats: SUMMARY_TREND_STATS,
  scenarios: { soak: fanoutScenario(cfg) },
  thresholds: fanoutThresholds(cfg, "", {
    p95: envInt("P95_MS", 100),
    p99: envInt("P99_MS", 250),
    ackP99: envInt("ACK_P99_MS", 250),
    max: envInt("MAX_MS", 5000),
    delivery: 0.9999,
    sendOk: 0.9999,
  }),
};

export function setup() {
  const runId = runIdForSetup();
  return { runId: runId, plan: fanoutSetup(runId, cfg), startAt: Date.now() + cfg.rampMs };
}

export default async function (data) {
  await fanoutIteration(data.plan, cfg, data.startAt, data.runId);
}

export const handleSummary = makeHandleSummary("soak", (data) => [offeredLine(data, "messages_sent", cfg.durationS, "offered")]);
