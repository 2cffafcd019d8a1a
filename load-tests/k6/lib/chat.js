/**
 * Shared moves of the chat scenarios: configuration from -e variables, users and conversations
 * made in setup() over REST, Socket.IO connections over k6/websockets, the JSON summary.
 */
import http from "k6/http";
import { sleep } from "k6";
import { WebSocket } from "k6/websockets";
import { setTimeout, clearTimeout } from "k6/timers";
import { createSioClient, socketUrl } from "./sio.js";
import { mintToken, secretFromEnv } from "./auth.js";

/** BASE_URL: nginx of `pnpm cluster` / compose (default), or one node. */
export const BASE_URL = (__ENV.BASE_URL || "http://localhost:8080").replace(/\/+$/, "");
export const RUN_ID = __ENV.RUN_ID || String(Date.now());

export function envInt(name, dflt) {
  const v = __ENV[name];
  return v === undefined || v === "" ? dflt : Number(v);
}

/**
 * `users` users (ids `k6-<run>-u<i>`) with tokens, user i in conversation i % rooms, conversations
 * created over REST by their first member. Returns { users: [{id, token, room}], rooms: [id], roomSizes }.
 */
export function makeUsersAndRooms(users, rooms) {
  const secret = secretFromEnv(__ENV);
  const list = [];
  for (let i = 0; i < users; i++) {
    const id = "k6-" + RUN_ID + "-u" + i;
    list.push({ id: id, token: mintToken(id, secret), room: rooms > 0 ? i % rooms : -1 });
  }
  const members = [];
  for (let r = 0; r < rooms; r++) members.push([]);
  for (const u of list) if (u.room >= 0) members[u.room].push(u.id);
  const reqs = [];
  for (let r = 0; r < rooms; r++) {
    const owner = list[r];
    reqs.push({
      method: "POST",
      url: BASE_URL + "/conversations",
      body: JSON.stringify({ members: members[r], title: "k6 " + RUN_ID + " #" + r }),
      params: { headers: { "content-type": "application/json", authorization: "Bearer " + owner.token }, tags: { name: "POST /conversations" } },
    });
  }
  const ids = batchRetrying(reqs, [201]).map((r) => r.json("id"));
  return { users: list, rooms: ids, roomSizes: members.map((m) => m.length) };
}

/**
 * setup() only: runs `reqs` through http.batch, BATCH (default 50) at a time, and returns their
 * responses in order. Requests answered 429 (the node's per-user buckets: `RATE_REST_WRITE` is 10/s
 * with a burst of 20 by default) are sent again after the longest Retry-After of the pass; setup
 * gives up when SETUP_RETRIES (default 10) passes in a row got nothing through. Any other status
 * outside `okStatuses` throws.
 */
export function batchRetrying(reqs, okStatuses) {
  const size = envInt("BATCH", 50);
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

/** The users VU `vu` (1-based) holds when `vus` VUs share `users`: every vus-th one. */
export function usersOfVu(users, vu, vus) {
  const mine = [];
  for (let i = vu - 1; i < users.length; i += vus) mine.push(users[i]);
  return mine;
}

/**
 * Opens a Socket.IO connection for `token`. handlers: onEvent(name, args), onDisconnect(reason).
 * Resolves with { ws, client, connectMs } once connected; rejects on connect_error or timeout.
 */
export function connect(token, handlers, timeoutMs) {
  const h = handlers || {};
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    // A fresh cookie jar per connection: the VU's own jar would keep nginx's chat_sticky cookie from
    // the first handshake and pin every connection of this VU to one node (STICKY_PER_VU=1 keeps it).
    const params = __ENV.STICKY_PER_VU === "1" ? { tags: { name: "socket.io" } } : { jar: new http.CookieJar(), tags: { name: "socket.io" } };
    const ws = new WebSocket(socketUrl(BASE_URL), null, params);
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      ws.close();
      reject(new Error("connect timeout"));
    }, timeoutMs || 10000);
    const client = createSioClient(ws, {
      auth: { token: token },
      onConnect: () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve({ ws: ws, client: client, connectMs: Date.now() - t0 });
      },
      onConnectError: (message) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        ws.close();
        reject(new Error("connect_error " + message));
      },
      onEvent: (name, args) => h.onEvent && h.onEvent(name, args),
      onDisconnect: (reason) => h.onDisconnect && h.onDisconnect(reason),
    }).attach();
    ws.addEventListener("error", (e) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new Error("ws error " + (e && e.error)));
    });
    // A socket the server closes after the upgrade but before its `40` (a draining node) fires only
    // `close`: fail at once instead of waiting for the timeout.
    ws.addEventListener("close", () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new Error("closed before connect"));
    });
  });
}

/** Emits with an acknowledgement; resolves with the answer object, rejects after `timeoutMs`. */
export function emitAck(client, event, payload, timeoutMs) {
  return new Promise((resolve, reject) => {
    let id;
    const timer = setTimeout(() => {
      client.cancelAck(id);
      reject(new Error(event + " ack timeout"));
    }, timeoutMs || 10000);
    id = client.emit(event, payload, (args) => {
      clearTimeout(timer);
      resolve(args[0]);
    });
  });
}

export const sleepMs = (ms) => new Promise((r) => setTimeout(r, ms));

/** handleSummary body: the full JSON next to the run, and a few lines on stdout. */
export function summary(name, data, keys) {
  const dir = (__ENV.SUMMARY_DIR || ".").replace(/\/+$/, "");
  const lines = ["", name + " (" + BASE_URL + ")"];
  for (const k of keys) {
    const m = data.metrics[k];
    if (!m) continue;
    const v = m.values;
    const parts = [];
    for (const f of ["count", "rate", "avg", "p(50)", "p(95)", "p(99)", "max"]) if (v[f] !== undefined) parts.push(f + "=" + (Math.round(v[f] * 1000) / 1000));
    const th = m.thresholds ? Object.keys(m.thresholds).map((t) => (m.thresholds[t].ok ? "✓ " : "✗ ") + t).join(", ") : "";
    lines.push("  " + k + ": " + parts.join(" ") + (th ? "   [" + th + "]" : ""));
  }
  const out = { stdout: lines.join("\n") + "\n" };
  out[dir + "/k6-" + name + "-summary.json"] = JSON.stringify(data, null, 1);
  return out;
}
