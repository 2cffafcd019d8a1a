/**
 * What setup() makes over REST, and how the VUs share it: users (`k6-<run>-<kind><i>`) with
 * tokens minted here (./auth.js), user i in conversation i % rooms, every conversation created by
 * its first member. The tokens travel to the VUs in the setup data; handleSummary drops that data
 * from every output (./summary.js).
 */
import http from "k6/http";
import { sleep } from "k6";
import { BASE_URL, envInt } from "./config.js";
import { mintToken, secretFromEnv } from "./auth.js";

/**
 * `users` users of `kind` in `rooms` conversations. Returns
 * { users: [{ id, token, room }], rooms: [conversationId], members: [[userId]] }.
 */
export function makeUsersAndRooms(runId, kind, users, rooms) {
  if (rooms < 1) throw new Error(kind + ": at least one conversation is needed");
  if (users < rooms) throw new Error(kind + ": " + users + " users cannot fill " + rooms + " conversations");
  const secret = secretFromEnv(__ENV);
  const list = [];
  for (let i = 0; i < users; i++) {
    const id = "k6-" + runId + "-" + kind + i;
    list.push({ id: id, token: mintToken(id, secret), room: i % rooms });
  }
  const members = [];
  for (let r = 0; r < rooms; r++) members.push([]);
  for (const u of list) members[u.room].push(u.id);
  const reqs = [];
  for (let r = 0; r < rooms; r++) {
    reqs.push({
      method: "POST",
      url: BASE_URL + "/conversations",
      body: JSON.stringify({ members: members[r], title: "k6 " + runId + " " + kind + " #" + r }),
      params: { headers: { "content-type": "application/json", authorization: "Bearer " + list[r].token }, tags: { name: "POST /conversations" } },
    });
  }
  const ids = batchRetrying(reqs, [201]).map((r) => r.json("id"));
  return { users: list, rooms: ids, members: members };
}

/**
 * setup() only: runs `reqs` through http.batch, BATCH (default 50) at a time, and returns their
 * responses in order. Requests answered 429 (the node's per-user buckets: `RATE_REST_WRITE` is 10/s
 * with a burst of 20 by default) are sent again after the longest Retry-After of the pass; setup
 * gives up when SETUP_RETRIES (default 10) passes in a row got nothing through. Any other status
 * outside `okStatuses` throws, and setup's failure stops the run.
 */
export function batchRetrying(reqs, okStatuses) {
  const size = envInt("BATCH", 50, 1);
  const maxStalled = envInt("SETUP_RETRIES", 10);
  const out = new Array(reqs.length);
  let queue = reqs.map((_, i) => i);
  let stalled = 0;
  while (queue.length > 0) {
    const retry = [];
    let waitS = 0;
    for (let i = 0; i < queue.length; i += size) {
      const idx = queue.slice(i, i + size);
      const res = http.batch(idx.map((k) => reqs[k]));
      for (let j = 0; j < res.length; j++) {
        const r = res[j];
        const k = idx[j];
        if (okStatuses.indexOf(r.status) >= 0) {
          out[k] = r;
        } else if (r.status === 429) {
          const after = Number(r.headers["Retry-After"]);
          waitS = Math.max(waitS, after > 0 ? Math.min(after, 10) : 1);
          retry.push(k);
        } else {
          throw new Error(reqs[k].method + " " + reqs[k].url + " answered " + r.status + ": " + r.body);
        }
      }
    }
    if (retry.length === 0) break;
    stalled = retry.length === queue.length ? stalled + 1 : 0;
    if (stalled > maxStalled) {
      throw new Error(retry.length + " requests still answered 429 after " + maxStalled + " retries (" + reqs[retry[0]].url + "): lift the nodes' limits (RATE_LIMIT_DISABLED=1)");
    }
    // The rest of the queue went on meanwhile (other users' buckets); what was refused waits once.
    sleep(waitS);
    queue = retry;
  }
  return out;
}

/**
 * The users slot `slot` (0-based) of `slots` holds: every slots-th one. For per-vu-iterations with
 * one iteration per VU, the slot is `exec.scenario.iterationInTest`, unique per VU of the scenario
 * (`__VU` is not: VU ids are shared by all scenarios of a run).
 */
export function usersOfSlot(users, slot, slots) {
  const mine = [];
  for (let i = slot; i < users.length; i += slots) mine.push(users[i]);
  return mine;
}

/** GET /conversations/:id's lastSeq for `token`, or undefined. */
export function lastSeqByRest(conversationId, token) {
  const res = http.get(BASE_URL + "/conversations/" + conversationId, { headers: { authorization: "Bearer " + token }, tags: { name: "GET /conversations/:id" } });
  const v = res.status === 200 ? res.json("lastSeq") : undefined;
  return typeof v === "number" ? v : undefined;
}
