/**
 * Spike: arrivals of new users at BASE_RATE/s for BASE_S, a jump to SPIKE_RATE/s within
 * SPIKE_RAMP_S (a true spike: no warm-up), SPIKE_HOLD_S at the peak, back to BASE_RATE as fast,
 * and RECOVER_S at the base rate to see whether the cluster returns to its baseline
 * (ramping-arrival-rate). Each arrival is a user who connects (reconnecting as socket.io-client
 * does), joins its conversation, sends one message, reads the room for HOLD_MS and leaves. Every
 * sample is tagged `phase` (base | spike | recovery, by the arrival's time), so the thresholds hold
 * the spike to its own budget and the recovery to the baseline's.
 *   k6 run -e BASE_URL=... -e JWT_SECRET=... -e SPIKE_RATE=300 load-tests/k6/scenarios/spike.js
 */
import exec from "k6/execution";
import { setInterval, clearInterval } from "k6/timers";
import { SUMMARY_TREND_STATS, abortUnless, envInt, reconnectConfig, runIdForSetup } from "../lib/config.js";
import { createDeliveryTracker, stampText } from "../lib/delivery.js";
import { createSession, sleepMs } from "../lib/session.js";
import { makeUsersAndRooms } from "../lib/setup.js";
import { makeHandleSummary } from "../lib/summary.js";

const cfg = {
  baseRate: envInt("BASE_RATE", 5, 1),
  spikeRate: envInt("SPIKE_RATE", 100, 1),
  baseS: envInt("BASE_S", 20, 1),
  spikeRampS: envInt("SPIKE_RAMP_S", 2, 1),
  spikeHoldS: envInt("SPIKE_HOLD_S", 20, 1),
  recoverS: envInt("RECOVER_S", 30, 1),
  holdMs: envInt("HOLD_MS", 5000, 1),
  users: envInt("USERS", 1000, 1),
  rooms: envInt("ROOMS", 20, 1),
  deliveryTimeoutMs: envInt("DELIVERY_TIMEOUT_MS", 3000, 1),
  sweepMs: envInt("SWEEP_MS", 500, 10),
  connectTimeoutMs: envInt("CONNECT_TIMEOUT_MS", 10000, 1),
  ackTimeoutMs: envInt("ACK_TIMEOUT_MS", 5000, 1),
  sendTimeoutMs: envInt("SEND_TIMEOUT_MS", 10000, 1),
  reconnect: reconnectConfig(true),
};
if (cfg.users / cfg.rooms > 1000) throw new Error("USERS / ROOMS must be at most 1000 (the contract's members per conversation)");
const maxVus = envInt("MAX_VUS", Math.ceil(cfg.spikeRate * (cfg.holdMs / 1000 + 2)), 1);
const preVus = Math.min(envInt("PRE_VUS", maxVus, 1), maxVus);
const spikeEndS = cfg.baseS + 2 * cfg.spikeRampS + cfg.spikeHoldS;

/** The phase an arrival `ms` after the scenario's start belongs to. */
export function phaseAt(ms) {
  if (ms < cfg.baseS * 1000) return "base";
  if (ms < spikeEndS * 1000) return "spike";
  return "recovery";
}

export const options = {
  setupTimeout: "120s",
  summaryTrendStats: SUMMARY_TREND_STATS,
  scenarios: {
    spike: {
      executor: "ramping-arrival-rate",
      startRate: cfg.baseRate,
      timeUnit: "1s",
      preAllocatedVUs: preVus,
      maxVUs: maxVus,
      stages: [
        { target: cfg.baseRate, duration: cfg.baseS + "s" },
        { target: cfg.spikeRate, duration: cfg.spikeRampS + "s" },
        { target: cfg.spikeRate, duration: cfg.spikeHoldS + "s" },
        { target: cfg.baseRate, duration: cfg.spikeRampS + "s" },
        { target: cfg.baseRate, duration: cfg.recoverS + "s" },
      ],
    },
  },
  thresholds: {
    sio_connect_ok: ["rate>0.99", abortUnless("rate>=0.5", (cfg.baseS + cfg.spikeRampS + 10) * 1000)],
    "sio_connect{phase:base}": ["p(95)<" + envInt("P95_MS", 500)],
    "sio_connect{phase:spike}": ["p(95)<" + envInt("SPIKE_P95_MS", 2000), "p(99)<" + envInt("SPIKE_P99_MS", 5000)],
    // Back to the baseline's budget once the spike is over.
    "sio_connect{phase:recovery}": ["p(95)<" + envInt("P95_MS", 500)],
    "send_ack{phase:recovery}": ["p(99)<" + envInt("ACK_P99_MS", 250)],
    "e2e_latency{phase:recovery,via:live}": ["p(99)<" + envInt("P99_MS", 250)],
    send_ok: ["rate>0.999"],
    delivery_ratio: ["rate>=0.999"],
    messages_delivered: ["count>0"],
    dropped_iterations: ["count<=" + envInt("MAX_DROPPED", 0)],
  },
};

export function setup() {
  const runId = runIdForSetup();
  const plan = makeUsersAndRooms(runId, "s", cfg.users, cfg.rooms);
  return { runId: runId, users: plan.users, rooms: plan.rooms };
}

export default async function (data) {
  const i = exec.scenario.iterationInTest;
  const u = data.users[i % data.users.length];
  const room = data.rooms[u.room];
  const arrivedAt = Date.now();
  const phase = phaseAt(arrivedAt - exec.scenario.startTime);
  const tags = () => ({ phase: phase });
  const tracker = createDeliveryTracker({ timeoutMs: cfg.deliveryTimeoutMs, runId: data.runId, tags: tags });
  let member;
  const s = createSession(u, [room], {
    reconnect: cfg.reconnect,
    connectTimeoutMs: cfg.connectTimeoutMs,
    ackTimeoutMs: cfg.ackTimeoutMs,
    sendTimeoutMs: cfg.sendTimeoutMs,
    tags: tags,
    onJoined: (r, from) => {
      member = tracker.member(r, from, Date.now());
    },
    onMessage: (r, m, via) => member && tracker.receive(member, m, via, Date.now()),
  });
  const leaveAt = arrivedAt + cfg.holdMs;
  if (!(await s.start(leaveAt))) {
    s.close();
    return;
  }
  const sweeper = setInterval(() => tracker.sweep(Date.now()), cfg.sweepMs);
  const r = await s.send(room, stampText(data.runId, u.id, i, Date.now()), "k6-spike-" + i);
  if (r.ok && r.message) tracker.know(room, r.message.seq, Date.now());
  await sleepMs(leaveAt - Date.now());
  if (member) tracker.leave(member, Date.now());
  clearInterval(sweeper);
  s.close();
}

export const handleSummary = makeHandleSummary("spike", () => [
  "base " + cfg.baseRate + "/s, spike " + cfg.spikeRate + "/s for " + cfg.spikeHoldS + " s, " + preVus + " of " + maxVus + " VUs preallocated",
]);
