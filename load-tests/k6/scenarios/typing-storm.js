/**
 * Typing storm: every user types continuously (TYPING_PER_SEC events per second) in its
 * conversation for DURATION_S, then stops; see lib/typing.js. Fails when the server broadcasts
 * every event (too many broadcasts), none or not all (`typing_pairs_complete`), or ends typing
 * late after stopTyping (`typing_stop_delay`), and when acknowledgements are slow or refused.
 *   k6 run -e BASE_URL=... -e JWT_SECRET=... load-tests/k6/scenarios/typing-storm.js
 */
import { SUMMARY_TREND_STATS, runIdForSetup } from "../lib/config.js";
import { typingConfig, typingIteration, typingScenario, typingSetup, typingThresholds } from "../lib/typing.js";
import { makeHandleSummary, offeredLine } from "../lib/summary.js";

const cfg = typingConfig("", { users: 500, rooms: 50, vus: 10, perUser: 4, durationS: 30 });

export const options = {
  setupTimeout: "120s",
  summaryTrendStats: SUMMARY_TREND_STATS,
  scenarios: { typing: typingScenario(cfg) },
  thresholds: typingThresholds(cfg, ""),
};

export function setup() {
  const runId = runIdForSetup();
  return { runId: runId, plan: typingSetup(runId, cfg), startAt: Date.now() + cfg.rampMs };
}

export default async function (data) {
  await typingIteration(data.plan, cfg, data.startAt);
}

export const handleSummary = makeHandleSummary("typing-storm", (data) => [offeredLine(data, "typing_sent", cfg.durationS, "typing events offered")]);
