/**
 * REST history reads: READERS users page through ROOMS conversations that setup() filled with
 * MESSAGES messages each, at RATE requests/s (constant-arrival-rate); see lib/history.js. Setup's
 * seeding waits out the node's REST write limits (429 + Retry-After), so it runs against the
 * default limits too, only slower.
 *   k6 run -e BASE_URL=... -e JWT_SECRET=... load-tests/k6/scenarios/history-reads.js
 */
import { SUMMARY_TREND_STATS, runIdForSetup } from "../lib/config.js";
import { historyConfig, historyRead, historyScenario, historySetup, historyThresholds } from "../lib/history.js";
import { makeHandleSummary } from "../lib/summary.js";

const cfg = historyConfig("", { users: 100, rooms: 20, messages: 300, rate: 200, durationS: 60 });

export const options = {
  setupTimeout: "300s",
  summaryTrendStats: SUMMARY_TREND_STATS,
  scenarios: { reads: historyScenario(cfg) },
  thresholds: historyThresholds(cfg, "reads"),
};

export function setup() {
  const runId = runIdForSetup();
  return { runId: runId, plan: historySetup(runId, cfg) };
}

export default function (data) {
  historyRead(data.plan, cfg);
}

export const handleSummary = makeHandleSummary("history-reads");
