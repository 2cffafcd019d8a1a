/**
 * Soak: the fan-out shape at a modest rate for a long time (default 30 minutes), to catch leaks,
 * slow drifts in latency and lost messages that only show over time. Watch the nodes' RSS and
 * event-loop lag in Grafana beside k6's own series (remote write).
 *   k6 run -e BASE_URL=... -e JWT_SECRET=... -e DURATION_S=1800 load-tests/k6/scenarios/soak.js
 */
import { FANOUT_SUMMARY_KEYS, fanoutConfig, fanoutIteration, fanoutOptions, fanoutSetup } from "../lib/fanout.js";
import { envInt, summary } from "../lib/chat.js";

const cfg = fanoutConfig({ users: 2000, rooms: 400, vus: 20, rate: 100, durationS: 1800, rampMs: 30000 });

// chat-fanout's thresholds, a stricter delivery and send budget, and a bound on the worst latency.
export const options = fanoutOptions(cfg, {
  e2e_latency: ["p(95)<" + envInt("P95_MS", 100), "p(99)<" + envInt("P99_MS", 250), "max<" + envInt("MAX_MS", 5000)],
  send_ack: ["p(99)<" + envInt("ACK_P99_MS", 250)],
  delivery_ratio: ["rate>=0.9999"],
  send_ok: ["rate>0.9999"],
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
  return summary("soak", data, FANOUT_SUMMARY_KEYS);
}
