/**
 * Connect storm: new Socket.IO connections arriving at a rising rate (ramping-arrival-rate), each
 * handshaking with a JWT, holding HOLD_MS, then leaving. Measures handshake-to-connected time.
 * Every iteration holds a VU for about HOLD_MS + its handshake, so PEAK_RATE/s needs
 * PEAK_RATE × (HOLD_MS/1000 + 1) VUs (MAX_VUS' default, e.g. 3000 for 500/s and the default 5 s
 * hold), and all of them are started before the test (PRE_VUS defaults to MAX_VUS): a VU started
 * mid-run is late for its arrival. Iterations k6 still drops fail the run (`dropped_iterations` ≤
 * MAX_DROPPED, default 0): the rate asked for is the rate offered. Arrivals do not reconnect: a
 * storm of first connections is what this measures; each failure is logged with its reason.
 *   k6 run -e BASE_URL=... -e JWT_SECRET=... -e PEAK_RATE=500 load-tests/k6/scenarios/connect-storm.js
 */
import { check } from "k6";
import exec from "k6/execution";
import { mintToken, secretFromEnv } from "../lib/auth.js";
import { SUMMARY_TREND_STATS, abortUnless, envInt, runIdForSetup } from "../lib/config.js";
import { sioConnect, sioConnectOk, sioConnectRefused } from "../lib/metrics.js";
import { openSocket, sleepMs, warnLimited } from "../lib/session.js";
import { makeHandleSummary } from "../lib/summary.js";

const peak = envInt("PEAK_RATE", 200, 1);
const pool = envInt("TOKEN_POOL", 2000, 1);
const holdMs = envInt("HOLD_MS", 5000);
const rampS = envInt("RAMP_S", 30, 1);
const maxVus = envInt("MAX_VUS", Math.ceil(peak * (holdMs / 1000 + 1)), 1);
const preVus = Math.min(envInt("PRE_VUS", maxVus, 1), maxVus);

export const options = {
  setupTimeout: "120s",
  summaryTrendStats: SUMMARY_TREND_STATS,
  scenarios: {
    storm: {
      executor: "ramping-arrival-rate",
      startRate: envInt("START_RATE", 10),
      timeUnit: "1s",
      preAllocatedVUs: preVus,
      maxVUs: maxVus,
      stages: [
        { target: peak, duration: rampS + "s" },
        { target: peak, duration: envInt("HOLD_S", 30, 1) + "s" },
        { target: 0, duration: envInt("DOWN_S", 10, 1) + "s" },
      ],
    },
  },
  thresholds: {
    // Most handshakes failing after the first seconds: the cluster is down, stop.
    sio_connect_ok: ["rate>0.99", abortUnless("rate>=0.5", 10000)],
    sio_connect: ["p(95)<" + envInt("P95_MS", 500), "p(99)<" + envInt("P99_MS", 1000)],
    dropped_iterations: ["count<=" + envInt("MAX_DROPPED", 0)],
  },
};

export function setup() {
  const runId = runIdForSetup();
  const secret = secretFromEnv(__ENV);
  const tokens = [];
  for (let i = 0; i < pool; i++) tokens.push(mintToken("k6-" + runId + "-storm" + i, secret));
  return { runId: runId, tokens: tokens };
}

export default async function (data) {
  const i = exec.scenario.iterationInTest;
  const token = data.tokens[i % data.tokens.length];
  let c;
  try {
    c = await openSocket(token, {}, envInt("CONNECT_TIMEOUT_MS", 10000, 1));
  } catch (e) {
    sioConnectOk.add(false);
    check(false, { connected: (v) => v });
    if (e.reason === "refused") sioConnectRefused.add(1);
    warnLimited("connect failed", "arrival " + i + ": " + e.message);
    return;
  }
  sioConnectOk.add(true);
  check(true, { connected: (v) => v });
  sioConnect.add(c.connectMs);
  await sleepMs(holdMs);
  c.client.close();
}

export const handleSummary = makeHandleSummary("connect-storm", () => ["peak " + peak + "/s, " + preVus + " of " + maxVus + " VUs preallocated"]);
