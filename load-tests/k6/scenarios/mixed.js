/**
 * Mixed workload: chat fan-out, typing, history reads and reconnecting users in one run against
 * the same cluster, each a k6 scenario of its own (`chat`, `typers`, `history`, `reconnects`),
 * tagged `workload`, with its own thresholds on `{scenario:<name>}`: a regression in one shows as
 * that scenario's failure while the others load the cluster as production would. Each workload
 * has its own users and conversations and is sized by its prefixed variables (CHAT_USERS,
 * TYPING_ROOMS, HISTORY_RATE, RECONNECTS_VUS, ...); DURATION_S, RAMP_MS and the timeouts are shared.
 *   k6 run -e BASE_URL=... -e JWT_SECRET=... load-tests/k6/scenarios/mixed.js
 */
import { SUMMARY_TREND_STATS, envInt, runIdForSetup } from "../lib/config.js";
import { fanoutConfig, fanoutIteration, fanoutScenario, fanoutSetup, fanoutThresholds } from "../lib/fanout.js";
import { typingConfig, typingIteration, typingScenario, typingSetup, typingThresholds } from "../lib/typing.js";
import { historyConfig, historyRead, historyScenario, historySetup, historyThresholds } from "../lib/history.js";
import { reconnectsConfig, reconnectsIteration, reconnectsScenario, reconnectsSetup, reconnectsThresholds } from "../lib/reconnects.js";
import { makeHandleSummary, offeredLine } from "../lib/summary.js";

const durationS = envInt("DURATION_S", 60, 1);
const rampMs = envInt("RAMP_MS", 15000);
const chatCfg = fanoutConfig("CHAT_", { users: 200, rooms: 20, vus: 4, rate: 40, durationS: durationS, rampMs: rampMs });
const typingCfg = typingConfig("TYPING_", { users: 100, rooms: 10, vus: 2, perUser: 2, durationS: durationS, rampMs: rampMs });
const historyCfg = historyConfig("HISTORY_", { users: 50, rooms: 10, messages: 200, rate: 50, durationS: durationS });
// As many drop cycles as fit in the run, so every workload loads the cluster for the same window.
const cycleS = envInt("CYCLE_S", 10, 1);
const reconnectsCfg = reconnectsConfig("RECONNECTS_", { users: 100, rooms: 10, vus: 2, cycles: Math.max(1, Math.floor(durationS / cycleS)), cycleS: cycleS, durationS: durationS, rampMs: rampMs });

function merge() {
  const out = {};
  for (let i = 0; i < arguments.length; i++) Object.assign(out, arguments[i]);
  return out;
}

export const options = {
  setupTimeout: "300s",
  summaryTrendStats: SUMMARY_TREND_STATS,
  scenarios: {
    chat: fanoutScenario(chatCfg, { exec: "chat", tags: { workload: "chat" } }),
    typers: typingScenario(typingCfg, { exec: "typers", tags: { workload: "typers" } }),
    // Reads start with the others' send window, after their ramp.
    history: historyScenario(historyCfg, { exec: "history", startTime: Math.ceil(rampMs / 1000) + "s", tags: { workload: "history" } }),
    reconnects: reconnectsScenario(reconnectsCfg, { exec: "reconnects", tags: { workload: "reconnects" } }),
  },
  thresholds: merge(
    fanoutThresholds(chatCfg, "{scenario:chat}", {
      p95: envInt("P95_MS", 100),
      p99: envInt("P99_MS", 250),
      ackP99: envInt("ACK_P99_MS", 250),
      delivery: 0.999,
      sendOk: 0.999,
    }),
    typingThresholds(typingCfg, "{scenario:typers}"),
    historyThresholds(historyCfg, "history"),
    reconnectsThresholds(reconnectsCfg, "{scenario:reconnects}"),
  ),
};

export function setup() {
  const runId = runIdForSetup();
  const data = {
    runId: runId,
    chat: fanoutSetup(runId, chatCfg, "m"),
    typers: typingSetup(runId, typingCfg, "t"),
    history: historySetup(runId, historyCfg, "r"),
    reconnects: reconnectsSetup(runId, reconnectsCfg, "c"),
  };
  // Everyone's window starts together, after setup (whose seeding may take a while) and the ramp.
  data.startAt = Date.now() + rampMs;
  return data;
}

export async function chat(data) {
  await fanoutIteration(data.chat, chatCfg, data.startAt, data.runId);
}

export async function typers(data) {
  await typingIteration(data.typers, typingCfg, data.startAt);
}

export function history(data) {
  historyRead(data.history, historyCfg);
}

export async function reconnects(data) {
  await reconnectsIteration(data.reconnects, reconnectsCfg, data.startAt, data.runId);
}

/** k6 needs a default function only when a scenario names none; every scenario here does. */
export default function () {}

export const handleSummary = makeHandleSummary("mixed", (data) => [offeredLine(data, "messages_sent", durationS, "offered (chat and reconnect senders)")]);
