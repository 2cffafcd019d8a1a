/**
 * Connect storm: new Socket.IO connections arriving at a rising rate (ramping-arrival-rate), each
 * handshaking with a JWT, holding HOLD_MS, then leaving. Measures handshake-to-connected time.
 * Every iteration holds a VU for about HOLD_MS + its handshake, so PEAK_RATE/s needs at least
 * PEAK_RATE × HOLD_MS/1000 VUs: MAX_VUS defaults to PEAK_RATE × (HOLD_MS/1000 + 1), e.g. 3000 for
 * the example below (500/s, default 5 s hold). Iterations k6 still drops for want of a free VU fail
 * the run (`dropped_iterations` ≤ MAX_DROPPED, default 0): the rate asked for is the rate offered.
 *   k6 run -e BASE_URL=... -e JWT_SECRET=... -e PEAK_RATE=500 load-tests/k6/scenarios/connect-storm.js
 */
import { Rate, Trend, Counter } from "k6/metrics";
import { mintToken, secretFromEnv } from "../lib/auth.js";
import { RUN_ID, connect, envInt, sleepMs, summary } from "../lib/chat.js";

const connectMs = new Trend("sio_connect", true);
const connectOk = new Rate("sio_connect_ok");
const refused = new Counter("sio_connect_refused");
const peak = envInt("PEAK_RATE", 200);
const pool = envInt("TOKEN_POOL", 2000);
const holdMs = envInt("HOLD_MS", 5000);
const preVus = envInt("PRE_VUS", 200);

export const options = {
  scenarios: {
    storm: {
      executor: "ramping-arrival-rate",
      startRate: envInt("START_RATE", 10),
      timeUnit: "1s",
      preAllocatedVUs: preVus,
      maxVUs: envInt("MAX_VUS", Math.max(preVus, Math.ceil(peak * (holdMs / 1000 + 1)))),
      stages: [
        { target: peak, duration: envInt("RAMP_S", 30) + "s" },
        { target: peak, duration: envInt("HOLD_S", 30) + "s" },
        { target: 0, duration: "10s" },
      ],
    },
  },
  thresholds: {
    sio_connect_ok: ["rate>0.99"],
    // In ms here; in seconds in Prometheus (k6_sio_connect_p99).
    sio_connect: ["p(95)<" + envInt("P95_MS", 500), "p(99)<" + envInt("P99_MS", 1000)],
    dropped_iterations: ["count<=" + envInt("MAX_DROPPED", 0)],
  },
};

export function setup() {
  const secret = secretFromEnv(__ENV);
  const tokens = [];
  for (let i = 0; i < pool; i++) tokens.push(mintToken("k6-" + RUN_ID + "-storm" + i, secret));
  return { tokens: tokens };
}

export default async function (data) {
  const token = data.tokens[(__VU * 7919 + __ITER) % data.tokens.length];
  try {
    const c = await connect(token, {}, 10000);
    connectOk.add(true);
    connectMs.add(c.connectMs);
    await sleepMs(holdMs);
    c.client.close();
  } catch (e) {
    connectOk.add(false);
    if (String(e).indexOf("connect_error") >= 0) refused.add(1);
  }
}

export function handleSummary(data) {
  return summary("connect-storm", data, ["sio_connect", "sio_connect_ok", "sio_connect_refused", "iterations", "dropped_iterations"]);
}
