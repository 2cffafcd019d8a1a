/**
 * REST history reads: READERS users page through conversations that setup() filled with
 * MESSAGES messages each, at RATE requests/s (constant-arrival-rate): the newest page, an older
 * page with `before`, and a catch-up with `after`. Setup's seeding waits out the node's REST write
 * limits (429 + Retry-After), so it runs against the default limits too, only slower.
 *   k6 run -e BASE_URL=... -e JWT_SECRET=... load-tests/k6/scenarios/history-reads.js
 */
import http from "k6/http";
import { check } from "k6";
import { BASE_URL, batchRetrying, envInt, makeUsersAndRooms, summary } from "../lib/chat.js";

const cfg = { users: envInt("READERS", 100), rooms: envInt("ROOMS", 20), messages: envInt("MESSAGES", 300), rate: envInt("RATE", 200), durationS: envInt("DURATION_S", 60) };

export const options = {
  setupTimeout: "300s",
  scenarios: {
    reads: { executor: "constant-arrival-rate", rate: cfg.rate, timeUnit: "1s", duration: cfg.durationS + "s", preAllocatedVUs: 50, maxVUs: 500 },
  },
  thresholds: {
    "http_req_duration{scenario:reads}": ["p(95)<" + envInt("P95_MS", 100), "p(99)<" + envInt("P99_MS", 250)],
    "http_req_failed{scenario:reads}": ["rate<0.001"],
    checks: ["rate>0.999"],
  },
};

export function setup() {
  const plan = makeUsersAndRooms(cfg.users, cfg.rooms);
  // Each room's messages are written by its members in turn, and the rooms' writes interleave, so
  // a batch spreads over many users' REST write buckets (10/s, burst 20 each by default);
  // batchRetrying waits out the 429s that remain (Retry-After) instead of failing the run.
  const members = plan.rooms.map(() => []);
  for (const u of plan.users) if (u.room >= 0) members[u.room].push(u);
  const reqs = [];
  for (let i = 0; i < cfg.messages; i++) {
    for (let r = 0; r < plan.rooms.length; r++) {
      const author = members[r][i % members[r].length];
      reqs.push({
        method: "POST",
        url: BASE_URL + "/conversations/" + plan.rooms[r] + "/messages",
        body: JSON.stringify({ message: "history " + i, clientMessageId: "h" + r + "-" + i }),
        params: { headers: { "content-type": "application/json", authorization: "Bearer " + author.token }, tags: { name: "seed messages" } },
      });
    }
  }
  batchRetrying(reqs, [200, 201]);
  return plan;
}

export default function (data) {
  const u = data.users[Math.floor(Math.random() * data.users.length)];
  const conv = data.rooms[u.room];
  const headers = { authorization: "Bearer " + u.token };
  const kind = __ITER % 3;
  const seq = 1 + Math.floor(Math.random() * cfg.messages);
  const q = kind === 0 ? "limit=50" : kind === 1 ? "limit=50&before=" + seq : "limit=100&after=" + seq;
  const res = http.get(BASE_URL + "/conversations/" + conv + "/messages?" + q, { headers: headers, tags: { name: "GET messages " + ["newest", "before", "after"][kind] } });
  check(res, {
    "200": (r) => r.status === 200,
    "ascending seq": (r) => {
      const m = r.json("messages");
      for (let i = 1; m && i < m.length; i++) if (m[i].seq <= m[i - 1].seq) return false;
      return !!m;
    },
  });
}

export function handleSummary(data) {
  return summary("history-reads", data, [
    // The thresholded sub-metrics: the reads alone, without setup's seeding POSTs.
    "http_req_duration{scenario:reads}",
    "http_req_failed{scenario:reads}",
    "http_reqs",
    "checks",
  ]);
}
