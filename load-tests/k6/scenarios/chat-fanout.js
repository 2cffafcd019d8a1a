/**
 * Chat fan-out: USERS users in ROOMS conversations (default 1000 in 100: 10 sockets per room) on
 * VUS VUs, RATE messages/s in total for DURATION_S seconds, users reconnecting as socket.io-client
 * does. See lib/fanout.js and the README for what each number means.
 *   k6 run -e BASE_URL=http://localhost:8080 -e JWT_SECRET=... load-tests/k6/scenarios/chat-fanout.js
 * Fails (exit 99) when live end-to-end latency, the send acknowledgement, the delivery ratio or the
 * send errors pass their budgets, when a socket receives a message twice, or when more than
 * MAX_DISCONNECTS (default 0) connections drop; stops early when delivery or sends are broken.
 */
import { SUMMARY_TREND_STATS, envInt, runIdForSetup } from "../lib/config.js";
import { fanoutConfig, fanoutIteration, fanoutScenario, fanoutSetup, fanoutThresholds } from "../lib/fanout.js";
import { makeHandleSummary, offeredLine } from "../lib/summary.js";

const cfg = fanoutConfig("", { users: 1000, rooms: 100, vus: 20, rate: 200, durationS: 60 });

export const options = {
  setupTimeout: "120s",
  summaryTrendStats: SUMMARY_TREND_STATS,
  scenarios: { fanout: fanoutScenario(cfg) },
  thresholds: fanoutThresholds(cfg, "", {
    p95: envInt("P95_MS", 100),
    p99: envInt("P99_MS", 250),
    ackP99: envInt("ACK_P99_MS", 250),
    delivery: 0.999,
    sendOk: 0.999,
  }),
};

export function setup() {
  const runId = runIdForSetup();
  return { runId: runId, plan: fanoutSetup(runId, cfg), startAt: Date.now() + cfg.rampMs };
}

export default async function (data) {
  await fanoutIteration(data.plan, cfg, data.startAt, data.runId);
}

export const handleSummary = makeHandleSummary("chat-fanout", (data) => [offeredLine(data, "messages_sent", cfg.durationS, "offered")]);
