/**
 * Chat fan-out, shared by chat-fanout.js and soak.js: USERS users in ROOMS conversations, spread
 * over VUS VUs (each VU holds several connections), sending RATE messages/s in total for DURATION.
 * End-to-end latency is measured from the send to every `newMessage` (the sender's own included);
 * delivery is checked by `seq`, which the contract makes gapless per conversation: each socket
 * notes `lastSeq` when it joins and again at the end, and must have seen every seq in between.
 */
import { Counter, Rate, Trend } from "k6/metrics";
import { setInterval, clearInterval } from "k6/timers";
import { connect, emitAck, envInt, makeUsersAndRooms, sleepMs, usersOfVu } from "./chat.js";

export const e2e = new Trend("e2e_latency_ms", true);
export const ackMs = new Trend("send_ack_ms", true);
export const connectMs = new Trend("sio_connect_ms", true);
export const connectOk = new Rate("sio_connect_ok");
export const sendOk = new Rate("send_ok");
export const delivery = new Rate("delivery_ratio");
export const sent = new Counter("messages_sent");
export const delivered = new Counter("messages_delivered");
export const missing = new Counter("messages_missing");

export function fanoutConfig(defaults) {
  return {
    users: envInt("USERS", defaults.users),
    rooms: envInt("ROOMS", defaults.rooms),
    vus: envInt("VUS", defaults.vus),
    rate: envInt("RATE", defaults.rate),
    durationS: envInt("DURATION_S", defaults.durationS),
    drainMs: envInt("DRAIN_MS", 3000),
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
  for (const u of mine) {
    const st = { room: data.rooms[u.room], joinSeq: 0, seen: {}, seenCount: 0, joined: false };
    try {
      const c = await connect(u.token, {
        onEvent: (name, args) => {
          if (name !== "newMessage") return;
          const m = args[0];
          if (!st.joined || m.conversationId !== st.room || m.seq <= st.joinSeq) return;
          if (!st.seen[m.seq]) {
            st.seen[m.seq] = true;
            st.seenCount++;
          }
          delivered.add(1);
          const t = sentAtOf(m.message);
          if (!isNaN(t)) e2e.add(Date.now() - t);
        },
      });
      connectOk.add(true);
      connectMs.add(c.connectMs);
      const ack = await emitAck(c.client, "joinConversation", { conversationId: st.room });
      if (!ack || !ack.ok) throw new Error("join refused " + JSON.stringify(ack));
      st.joinSeq = ack.lastSeq;
      st.joined = true;
      conns.push({ u: u, c: c, st: st });
    } catch (e) {
      connectOk.add(false);
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
  for (const x of conns) {
    try {
      const ack = await emitAck(x.c.client, "joinConversation", { conversationId: x.st.room });
      let got = 0;
      for (let s = x.st.joinSeq + 1; s <= ack.lastSeq; s++) if (x.st.seen[s]) got++;
      const expected = ack.lastSeq - x.st.joinSeq;
      for (let i = 0; i < got; i++) delivery.add(true);
      for (let i = got; i < expected; i++) delivery.add(false);
      if (expected > got) missing.add(expected - got);
    } catch (e) {
      console.warn("final join of " + x.u.id + " failed: " + e);
    }
    x.c.client.close();
  }
}
