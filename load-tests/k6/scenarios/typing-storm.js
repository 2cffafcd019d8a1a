/**
 * Typing storm: every user types continuously (TYPING_PER_SEC events per user per second) in its
 * conversation. The contract says repeats within the window only extend it, so the server should
 * broadcast transitions, not every event: `typing_broadcasts_received` stays far below
 * `typing_sent` × room size, and acks stay fast. While a user types more often than once per
 * TYPING_TIMEOUT_MS (the node's, default 3000), each other member receives one `true` and one
 * `false` from it; `typing_broadcasts_received` fails above BROADCAST_MARGIN (default 1.5) times that.
 *   k6 run -e BASE_URL=... -e JWT_SECRET=... load-tests/k6/scenarios/typing-storm.js
 */
import { Counter, Rate, Trend } from "k6/metrics";
import { setInterval, clearInterval } from "k6/timers";
import { connect, emitAck, envInt, makeUsersAndRooms, sleepMs, summary, usersOfVu } from "../lib/chat.js";

const ackMs = new Trend("typing_ack", true);
const ackOk = new Rate("typing_ack_ok");
const sentTyping = new Counter("typing_sent");
const received = new Counter("typing_broadcasts_received");
const connectOk = new Rate("sio_connect_ok");

const cfg = {
  users: envInt("USERS", 500),
  rooms: envInt("ROOMS", 50),
  vus: envInt("VUS", 10),
  perUser: envInt("TYPING_PER_SEC", 4),
  durationS: envInt("DURATION_S", 30),
  rampMs: envInt("RAMP_MS", 10000),
  /** The nodes' TYPING_TIMEOUT_MS: a user typing at least this often stays in one window. */
  typingTimeoutMs: envInt("TYPING_TIMEOUT_MS", 3000),
};

/**
 * The most `typing` broadcasts the run may receive when the server broadcasts transitions only:
 * each user opens windows (one while it types faster than the timeout by a wide margin, else at
 * most one per event), each window is one `true` and one `false` to each other member of the room
 * (user i is in room i % ROOMS). A server re-broadcasting every event exceeds it by far.
 */
function maxBroadcasts() {
  const intervalMs = cfg.perUser > 0 ? 1000 / cfg.perUser : Infinity;
  const windows = intervalMs * 2 < cfg.typingTimeoutMs ? 1 : Math.ceil(cfg.perUser * cfg.durationS) + 1;
  let pairs = 0;
  for (let r = 0; r < cfg.rooms; r++) {
    const size = Math.floor(cfg.users / cfg.rooms) + (r < cfg.users % cfg.rooms ? 1 : 0);
    pairs += size * (size - 1);
  }
  return Math.ceil(envInt("BROADCAST_MARGIN", 1.5) * 2 * windows * pairs);
}

export const options = {
  setupTimeout: "120s",
  scenarios: { typing: { executor: "per-vu-iterations", vus: cfg.vus, iterations: 1, maxDuration: cfg.durationS + cfg.rampMs / 1000 + 60 + "s" } },
  thresholds: {
    typing_ack_ok: ["rate>0.999"],
    // In ms here; in seconds in Prometheus (k6_typing_ack_p99).
    typing_ack: ["p(95)<" + envInt("P95_MS", 50), "p(99)<" + envInt("P99_MS", 150)],
    sio_connect_ok: ["rate>0.99"],
    typing_broadcasts_received: ["count<=" + maxBroadcasts()],
  },
};

export function setup() {
  const plan = makeUsersAndRooms(cfg.users, cfg.rooms);
  plan.startAt = Date.now() + cfg.rampMs;
  return plan;
}

export default async function (data) {
  const conns = [];
  for (const u of usersOfVu(data.users, __VU, cfg.vus)) {
    let c;
    try {
      c = await connect(u.token, { onEvent: (name) => name === "typing" && received.add(1) });
      const ack = await emitAck(c.client, "joinConversation", { conversationId: data.rooms[u.room] });
      if (!ack || !ack.ok) throw new Error("join refused " + JSON.stringify(ack));
      connectOk.add(true);
      conns.push({ c: c, room: data.rooms[u.room] });
    } catch (e) {
      connectOk.add(false);
      if (c) c.client.close();
      console.warn(String(e));
    }
  }
  await sleepMs(Math.max(0, data.startAt - Date.now()));
  const endAt = data.startAt + cfg.durationS * 1000;
  // What the schedule owes (elapsed × rate) is sent on every tick, so late ticks catch up and the
  // offered rate is TYPING_PER_SEC per user whatever the tick; users take turns.
  const perVuRate = cfg.perUser * conns.length;
  await new Promise((resolve) => {
    if (conns.length === 0 || perVuRate <= 0) return resolve();
    const t0 = Date.now();
    let n = 0;
    const timer = setInterval(() => {
      const now = Date.now();
      const due = Math.floor(((Math.min(now, endAt) - t0) * perVuRate) / 1000);
      while (n < due) {
        const x = conns[n++ % conns.length];
        const t = Date.now();
        sentTyping.add(1);
        emitAck(x.c.client, "typing", { conversationId: x.room }, 10000).then(
          (a) => {
            ackOk.add(!!(a && a.ok));
            ackMs.add(Date.now() - t);
          },
          () => ackOk.add(false),
        );
      }
      if (now >= endAt) {
        clearInterval(timer);
        resolve();
      }
    }, envInt("TICK_MS", 10));
  });
  for (const x of conns) {
    try {
      await emitAck(x.c.client, "stopTyping", { conversationId: x.room });
    } catch (e) {
      console.warn(String(e));
    }
    x.c.client.close();
  }
}

export function handleSummary(data) {
  return summary("typing-storm", data, ["typing_ack", "typing_ack_ok", "typing_sent", "typing_broadcasts_received", "sio_connect_ok"]);
}
