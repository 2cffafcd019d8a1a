/**
 * Connect storm: new Socket.IO connections arriving at a rising rate (ramping-arrival-rate), each
 * handshaking with a JWT, holding HOLD_MS, then leaving. Measures handshake-to-connected time.
 *   k6 run -e BASE_URL=... -e JWT_SECRET=... -e PEAK_RATE=500 load-tests/k6/scenarios/connect-storm.js
 */
import { Rate, Trend, Counter } from "k6/metrics";
import { mintToken, secretFromEnv } from "../lib/auth.js";
import { RUN_ID, connect, envInt, sleepMs, summary } from "../lib/chat.js";

const connectMs = new Trend("sio_connect_ms", true);
const connectOk = new Rate("sio_connect_ok");
const refused = new Counter("sio_connect_refused");
const peak = envInt("PEAK_RATE", 200);
const pool = envInt("TOKEN_POOL", 2000);

export const options = {
  scenarios: {
    storm: {
      executor: "ramping-arrival-rate",
      startRate: envInt("START_RATE", 10),
      timeUnit: "1s",
      preAllocatedVUs: envInt("PRE_VUS", 200),
      maxVUs: envInt("MAX_VUS", 2000),
      stages: [
        { target: peak, duration: envInt("RAMP_S", 30) + "s" },
        { target: peak, duration: envInt("HOLD_S", 30) + "s" },
        { target: 0, duration: "10s" },
      ],
    },
  },
  thresholds: {
    sio_connect_ok: ["rate>0.99"],
    sio_connect_ms: ["p(95)<" + envInt("P95_MS", 500), "p(99)<" + envInt("P99_MS", 1000)],
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
    await sleepMs(envInt("HOLD_MS", 5000));
    c.client.close();
  } catch (e) {
    connectOk.add(false);
    if (String(e).indexOf("connect_error") >= 0) refused.add(1);
  }
}

export function handleSummary(data) {
  return summary("connect-storm", data, ["sio_connect_ms", "sio_connect_ok", "sio_connect_refused", "iterations", "dropped_iterations"]);
}
