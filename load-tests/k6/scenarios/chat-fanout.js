/**
 * Chat fan-out: USERS users in ROOMS conversations (default 1000 in 100: 10 sockets per room),
 * VUS VUs holding them, RATE messages/s in total for DURATION_S seconds.
 *   k6 run -e BASE_URL=http://localhost:8080 -e JWT_SECRET=... load-tests/k6/scenarios/chat-fanout.js
 * Fails (exit 99) when p95/p99 end-to-end latency, the delivery ratio or the send errors regress,
 * when a socket receives a message twice, or when a socket drops mid-run (MAX_DISCONNECTS, default 0).
 */
import { FANOUT_SUMMARY_KEYS, fanoutConfig, fanoutIteration, fanoutOptions, fanoutSetup } from "../lib/fanout.js";
import { envInt, summary } from "../lib/chat.js";

const cfg = fanoutConfig({ users: 1000, rooms: 100, vus: 20, rate: 200, durationS: 60 });

// Time trends in ms here (k6 thresholds), in seconds in Prometheus (k6_e2e_latency_p99).
export const options = fanoutOptions(cfg, {
  e2e_latency: ["p(95)<" + envInt("P95_MS", 100), "p(99)<" + envInt("P99_MS", 250)],
  send_ack: ["p(99)<" + envInt("ACK_P99_MS", 250)],
  delivery_ratio: ["rate>=0.999"],
  send_ok: ["rate>0.999"],
  sio_connect_ok: ["rate>0.99"],
  duplicate_deliveries: ["count==0"],
  sio_disconnects: ["count<=" + cfg.maxDisconnects],
});

export function setup() {
  return fanoutSetup(cfg);
}

export default async function (data) {
  await fanoutIteration(data, cfg);
}

export function handleSummary(data) {
  return summary("chat-fanout", data, FANOUT_SUMMARY_KEYS);
}
