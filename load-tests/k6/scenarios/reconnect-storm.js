/**
 * Reconnect storm: users drop and come back, re-joining with `sinceSeq` as the SDK does, while
 * senders keep sending; every re-join must bring back exactly what was sent meanwhile. DROP=client
 * (default) cuts every dropper's transport at once, CYCLES times; DROP=server leaves the drops to
 * the operator (stop or restart a node behind nginx) and follows socket.io-client's reconnection.
 * See lib/reconnects.js.
 *   k6 run -e BASE_URL=... -e JWT_SECRET=... load-tests/k6/scenarios/reconnect-storm.js
 */
import { SUMMARY_TREND_STATS, runIdForSetup } from "../lib/config.js";
import { reconnectsConfig, reconnectsIteration, reconnectsScenario, reconnectsSetup, reconnectsThresholds } from "../lib/reconnects.js";
import { makeHandleSummary } from "../lib/summary.js";

const cfg = reconnectsConfig("", { users: 500, rooms: 50, vus: 10, cycles: 5, cycleS: 10, durationS: 60 });

export const options = {
  setupTimeout: "120s",
  summaryTrendStats: SUMMARY_TREND_STATS,
  scenarios: { storm: reconnectsScenario(cfg) },
  thresholds: reconnectsThresholds(cfg, ""),
};

export function setup() {
  const runId = runIdForSetup();
  return { runId: runId, plan: reconnectsSetup(runId, cfg), startAt: Date.now() + cfg.rampMs };
}

export default async function (data) {
  await reconnectsIteration(data.plan, cfg, data.startAt, data.runId);
}

export const handleSummary = makeHandleSummary("reconnect-storm", () => ["drops: " + cfg.drop]);
