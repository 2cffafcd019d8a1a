/**
 * Chat fan-out, shared by chat-fanout.js and soak.js: USERS users in ROOMS conversations, spread
 * over VUS VUs (each VU holds several connections), sending RATE messages/s in total for DURATION.
 * End-to-end latency is measured from the send to every `newMessage` (the sender's own included);
 * delivery is checked by `seq`, which the contract makes gapless per conversation: each socket
 * notes `lastSeq` when it joins and again at the end, and must have seen every seq in between
 * (a socket that dropped, or whose final join fails, is held to the room's last seq all the same).
 * A seq seen twice on one socket counts in `duplicate_deliveries`, a dropped socket in `sio_disconnects`.
 */
import { Counter, Rate, Trend } from "k6/metrics";
import { setInterval, clearInterval } from "k6/timers";
import http from "k6/http";
import { BASE_URL, connect, emitAck, envInt, makeUsersAndRooms, sleepMs, usersOfVu } from "./chat.js";

// Time trends are named without a unit, as k6's own (`http_req_duration`): thresholds and the
// summary read them in ms, k6's Prometheus remote write converts them to seconds (k6_e2e_latency_p99).
export const e2e = new Trend("e2e_latency", true);
export const ackMs = new Trend("send_ack", true);
export const connectMs = new Trend("sio_connect", true);
/** Connected and joined (one sample per user). */
export const connectOk = new Rate("sio_connect_ok");
export const sendOk = new Rate("send_ok");
export const delivery = new Rate("delivery_ratio");
export const sent = new Counter("messages_sent");
/** `newMessage`s received, each (socket, seq) once; repeats go to `duplicate_deliveries`. */
export const delivered = new Counter("messages_delivered");
export const missing = new Counter("messages_missing");
/** A `newMessage` whose seq the socket had already received (the contract: once per socket). */
export const duplicates = new Counter("duplicate_deliveries");
/** Joined sockets the server or the network dropped before the end of the run. */
export const disconnects = new Counter("sio_disconnects");

/** What the fan-out scenarios (chat-fanout, soak) print in their summary. */
export const FANOUT_SUMMARY_KEYS = [
  "e2e_latency",
  "send_ack",
  "delivery_ratio",
  "send_ok",
  "messages_sent",
  "messages_delivered",
  "messages_missing",
  "duplicate_deliveries",
  "sio_disconnects",
  "sio_connect",
  "sio_connect_ok",
];

export function fanoutConfig(defaults) {
  return {
    users: envInt("USERS", defaults.users),
    rooms: envInt("ROOMS", defaults.rooms),
    vus: envInt("VUS", defaults.vus),
    rate: envInt("RATE", defaults.rate),
    durationS: envInt("DURATION_S", defaults.durationS),
    drainMs: envInt("DRAIN_MS", 3000),
    /** Tolerated socket drops in the whole run (`sio_disconnects`). */
    maxDisconnects: envInt("MAX_DISCONNECTS", 0),
    /** Time every VU gets to connect and join before the first send. */
    rampMs: envInt("RAMP_MS", defaults.rampMs || 15000),
  };
}

export function fanoutOptions(cfg, thresholds) {
  return {
    setupTimeout: "120s",
    scenarios: {
      fanout: {
        executor: "per-vu-iterations",
        vus: cfg.vus,
        iterations: 1,
        maxDuration: Math.ceil((cfg.rampMs + cfg.durationS * 1000 + cfg.drainMs) / 1000 + 60) + "s",
      },
    },
    thresholds: thresholds,
  };
}

export function fanoutSetup(cfg) {
  const plan = makeUsersAndRooms(cfg.users, cfg.rooms);
  plan.startAt = Date.now() + cfg.rampMs;
  return plan;
}

function sentAtOf(text) {
  // "k6|<sent at ms>|..."
  if (typeof text !== "string" || text.indexOf("k6|") !== 0) return NaN;
  const b = text.indexOf("|", 3);
  return b > 3 ? Number(text.slice(3, b)) : NaN;
}

export async function fanoutIteration(data, cfg) {
  const mine = usersOfVu(data.users, __VU, cfg.vus);
  const conns = [];
  // So that both series exist (count 0) in the summary and in Prometheus even when nothing happens.
  duplicates.add(0);
  disconnects.add(0);
  for (const u of mine) {
    const st = { room: data.rooms[u.room], joinSeq: 0, seen: {}, seenCount: 0, joined: false, closing: false };
    let c;
    try {
      c = await connect(u.token, {
        onEvent: (name, args) => {
          if (name !== "newMessage") return;
          const m = args[0];
          if (!st.joined || m.conversationId !== st.room || m.seq <= st.joinSeq) return;
          if (st.seen[m.seq]) {
            duplicates.add(1);
            return;
          }
          st.seen[m.seq] = true;
          st.seenCount++;
          delivered.add(1);
          const t = sentAtOf(m.message);
          if (!isNaN(t)) e2e.add(Date.now() - t);
        },
        onDisconnect: (reason) => {
          if (!st.joined || st.closing) return;
          st.joined = false;
          disconnects.add(1);
          console.warn("user " + u.id + " disconnected: " + reason);
        },
      });
      const ack = await emitAck(c.client, "joinConversation", { conversationId: st.room });
      if (!ack || !ack.ok) throw new Error("join refused " + JSON.stringify(ack));
      st.joinSeq = ack.lastSeq;
      st.joined = true;
      // Only now: a refused join is one failed connection, not a good one and a failed one.
      connectOk.add(true);
      connectMs.add(c.connectMs);
      conns.push({ u: u, c: c, st: st });
    } catch (e) {
      connectOk.add(false);
      if (c) c.client.close();
      console.warn("user " + u.id + ": " + e);
    }
  }
  await sleepMs(Math.max(0, data.startAt - Date.now()));
  const endAt = data.startAt + cfg.durationS * 1000;
  const perVuRate = cfg.rate / cfg.vus;
  let n = 0;
  await new Promise((resolve) => {
    if (conns.length === 0 || perVuRate <= 0) return resolve();
    const t0 = Date.now();
    const timer = setInterval(() => {
      const now = Date.now();
      const due = Math.floor(((Math.min(now, endAt) - t0) * perVuRate) / 1000);
      while (n < due) {
        const x = conns[n % conns.length];
        const sentAt = Date.now();
        const cmid = "k6-" + __VU + "-" + n;
        n++;
        sent.add(1);
        emitAck(x.c.client, "sendMessage", { conversationId: x.st.room, message: "k6|" + sentAt + "|" + __VU, clientMessageId: cmid }, 15000).then(
          (a) => {
            sendOk.add(!!(a && a.ok));
            ackMs.add(Date.now() - sentAt);
          },
          () => sendOk.add(false),
        );
      }
      if (now >= endAt) {
        clearInterval(timer);
        resolve();
      }
    }, Math.max(5, Math.floor(1000 / perVuRate)));
  });
  await sleepMs(cfg.drainMs);
  // Every joined socket must have seen every seq between its join and the room's last one. The
  // last seq comes from the socket's own final join; for a socket that dropped (or whose final join
  // fails) it comes from another socket of the room or from REST, so its misses still count.
  const lastSeqOf = {};
  const failed = [];
  for (const x of conns) {
    x.st.closing = true;
    try {
      if (!x.c.client.connected) throw new Error("socket closed");
      const ack = await emitAck(x.c.client, "joinConversation", { conversationId: x.st.room });
      if (!ack || !ack.ok) throw new Error("join refused " + JSON.stringify(ack));
      lastSeqOf[x.st.room] = Math.max(lastSeqOf[x.st.room] || 0, ack.lastSeq);
      countDelivery(x.st, ack.lastSeq);
    } catch (e) {
      console.warn("final join of " + x.u.id + " failed: " + e);
      failed.push(x);
    }
    x.c.client.close();
  }
  for (const x of failed) {
    let last = lastSeqOf[x.st.room];
    if (last === undefined) {
      const res = http.get(BASE_URL + "/conversations/" + x.st.room, { headers: { authorization: "Bearer " + x.u.token }, tags: { name: "GET /conversations/:id" } });
      last = res.status === 200 ? res.json("lastSeq") : undefined;
      if (typeof last === "number") lastSeqOf[x.st.room] = last;
    }
    if (typeof last === "number") {
      countDelivery(x.st, last);
    } else {
      // How many it missed is unknown: count one, so that the ratio cannot pass over the socket.
      console.warn("no last seq of " + x.st.room + " for " + x.u.id + ": counted as one missing message");
      delivery.add(false);
      missing.add(1);
    }
  }
}

/** Adds one `delivery_ratio` sample per seq in (joinSeq, lastSeq]: seen or missing. */
function countDelivery(st, lastSeq) {
  let got = 0;
  for (let s = st.joinSeq + 1; s <= lastSeq; s++) if (st.seen[s]) got++;
  const expected = lastSeq - st.joinSeq;
  for (let i = 0; i < got; i++) delivery.add(true);
  for (let i = got; i < expected; i++) delivery.add(false);
  if (expected > got) missing.add(expected - got);
}
