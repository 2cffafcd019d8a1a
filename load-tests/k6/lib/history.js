/**
 * The history-read workload (history-reads.js, the `history` part of mixed.js): READERS users
 * page through ROOMS conversations that setup() filled with MESSAGES messages each (so their seqs
 * are exactly 1..MESSAGES), at RATE requests/s (constant-arrival-rate: the rate asked is the rate
 * offered, or `dropped_iterations` says by how much not). Each request is one of three, in turn:
 * the newest page, a page `before=<seq>`, a catch-up `after=<seq>`, with seqs drawn so that the
 * page is never empty; `check()` holds each answer to exactly the seqs and `hasMore` the contract
 * gives for it, so an empty, misplaced or unordered page fails.
 */
import http from "k6/http";
import { check } from "k6";
import exec from "k6/execution";
import { BASE_URL, abortUnless, envInt } from "./config.js";
import { batchRetrying, makeUsersAndRooms } from "./setup.js";

export function historyConfig(prefix, d) {
  const p = prefix || "";
  const cfg = {
    users: envInt(p + "READERS", d.users, 1),
    rooms: envInt(p + "ROOMS", d.rooms, 1),
    messages: envInt(p + "MESSAGES", d.messages, 2),
    rate: envInt(p + "RATE", d.rate, 1),
    limit: envInt(p + "LIMIT", 50, 1),
    durationS: envInt("DURATION_S", d.durationS, 1),
    maxDropped: envInt("MAX_DROPPED", 0),
  };
  if (cfg.limit > 200) throw new Error(p + "LIMIT must be at most 200 (the contract's page size)");
  // A request may take its p99 budget (250 ms) and more under load: half a second of arrivals.
  cfg.maxVUs = envInt(p + "MAX_VUS", Math.ceil(cfg.rate * 0.5) + 10, 1);
  // Preallocated = max by default: VUs started mid-run are late for their arrivals (dropped).
  cfg.preVUs = Math.min(envInt(p + "PRE_VUS", cfg.maxVUs, 1), cfg.maxVUs);
  if (cfg.users < cfg.rooms) throw new Error(p + "READERS must be at least " + p + "ROOMS");
  return cfg;
}

export function historyScenario(cfg, extra) {
  return Object.assign(
    { executor: "constant-arrival-rate", rate: cfg.rate, timeUnit: "1s", duration: cfg.durationS + "s", preAllocatedVUs: cfg.preVUs, maxVUs: cfg.maxVUs },
    extra || {},
  );
}

/** `scenario`: the scenario's name, for the thresholds on its requests only (not setup's seeding). */
export function historyThresholds(cfg, scenario) {
  const th = {};
  th["http_req_duration{scenario:" + scenario + "}"] = ["p(95)<" + envInt("READ_P95_MS", 100), "p(99)<" + envInt("READ_P99_MS", 250)];
  // Most reads failing once the grace is over: the node is down or refuses everything, stop.
  th["http_req_failed{scenario:" + scenario + "}"] = ["rate<0.001", abortUnless("rate<0.5", envInt("ABORT_GRACE_MS", 30000))];
  th["checks{scenario:" + scenario + "}"] = ["rate>0.999"];
  th["dropped_iterations{scenario:" + scenario + "}"] = ["count<=" + cfg.maxDropped];
  return th;
}

/** Creates the conversations and writes MESSAGES messages into each, by its members in turn. */
export function historySetup(runId, cfg, kind) {
  const plan = makeUsersAndRooms(runId, kind || "r", cfg.users, cfg.rooms);
  const members = plan.rooms.map(() => []);
  for (const u of plan.users) members[u.room].push(u);
  const reqs = [];
  // The rooms' writes interleave, so a batch spreads over many users' REST write buckets (10/s,
  // burst 20 each by default); batchRetrying waits out the 429s that remain (Retry-After).
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
  return { users: plan.users, rooms: plan.rooms };
}

/** The seqs (first..last) and hasMore the contract gives for a query on 1..M. */
export function expectedPage(kind, seq, limit, M) {
  if (kind === "newest") return { first: Math.max(1, M - limit + 1), last: M, hasMore: M > limit };
  if (kind === "before") return { first: Math.max(1, seq - limit), last: seq - 1, hasMore: seq - 1 > limit };
  return { first: seq + 1, last: Math.min(M, seq + limit), hasMore: seq + limit < M };
}

const KINDS = ["newest", "before", "after"];

function pageMatches(body, e) {
  const m = body && body.messages;
  if (!m || m.length !== e.last - e.first + 1) return false;
  for (let i = 0; i < m.length; i++) if (m[i].seq !== e.first + i) return false;
  return body.hasMore === e.hasMore;
}

export function historyRead(plan, cfg) {
  const i = exec.scenario.iterationInTest;
  const u = plan.users[Math.floor(Math.random() * plan.users.length)];
  const conv = plan.rooms[u.room];
  const kind = KINDS[i % 3];
  const M = cfg.messages;
  // before=b with b in 2..M+1 and after=a with a in 0..M-1: never an empty page.
  const seq = kind === "before" ? 2 + Math.floor(Math.random() * M) : kind === "after" ? Math.floor(Math.random() * M) : 0;
  const q = "limit=" + cfg.limit + (kind === "before" ? "&before=" + seq : kind === "after" ? "&after=" + seq : "");
  const res = http.get(BASE_URL + "/conversations/" + conv + "/messages?" + q, { headers: { authorization: "Bearer " + u.token }, tags: { name: "GET messages " + kind } });
  let body;
  try {
    body = res.json();
  } catch {
    body = undefined;
  }
  const e = expectedPage(kind, seq, cfg.limit, M);
  const m = (body && body.messages) || [];
  check(
    res,
    {
      "status 200": (r) => r.status === 200,
      "page not empty": () => m.length > 0,
      "seq ascending": () => m.every((x, j) => j === 0 || x.seq > m[j - 1].seq),
      "before/after respected": () => m.every((x) => (kind === "before" ? x.seq < seq : kind === "after" ? x.seq > seq : true)),
      "exactly the page asked, hasMore right": () => pageMatches(body, e),
    },
    { kind: kind },
  );
}
