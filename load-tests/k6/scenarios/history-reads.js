/**
 * REST history reads: READERS users page through conversations that setup() filled with
 * MESSAGES messages each, at RATE requests/s (constant-arrival-rate): the newest page, an older
 * page with `before`, and a catch-up with `after`.
 *   k6 run -e BASE_URL=... -e JWT_SECRET=... load-tests/k6/scenarios/history-reads.js
 */
import http from "k6/http";
import { check } from "k6";
import { BASE_URL, envInt, makeUsersAndRooms, summary } from "../lib/chat.js";

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
  for (let r = 0; r < plan.rooms.length; r++) {
    const author = plan.users[r];
    const reqs = [];
    for (let i = 0; i < cfg.messages; i++) {
      reqs.push({
        method: "POST",
        url: BASE_URL + "/conversations/" + plan.rooms[r] + "/messages",
        body: JSON.stringify({ message: "history " + i, clientMessageId: "h" + r + "-" + i }),
        params: { headers: { "content-type": "application/json", authorization: "Bearer " + author.token }, tags: { name: "seed messages" } },
      });
    }
    for (let i = 0; i < reqs.length; i += 50) for (const res of http.batch(reqs.slice(i, i + 50))) if (res.status !== 201 && res.status !== 200) throw new Error("seeding answered " + res.status);
  }
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
  return summary("history-reads", data, ["http_req_duration", "http_req_failed", "http_reqs", "checks"]);
}
