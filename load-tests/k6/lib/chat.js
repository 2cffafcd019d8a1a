/**
 * Shared moves of the chat scenarios: configuration from -e variables, users and conversations
 * made in setup() over REST, Socket.IO connections over k6/websockets, the JSON summary.
 */
import http from "k6/http";
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
  const ids = [];
  for (let i = 0; i < reqs.length; i += 50) {
    const res = http.batch(reqs.slice(i, i + 50));
    for (const r of res) {
      if (r.status !== 201) throw new Error("POST /conversations answered " + r.status + ": " + r.body);
      ids.push(r.json("id"));
    }
  }
  return { users: list, rooms: ids, roomSizes: members.map((m) => m.length) };
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
