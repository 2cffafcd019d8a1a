/**
 * Typing storm: every user types continuously (TYPING_PER_SEC events per user per second) in its
 * conversation. The contract says repeats within the window only extend it, so the server should
 * broadcast transitions, not every event: `typing_broadcasts_received` stays far below
 * `typing_sent` × room size, and acks stay fast.
 *   k6 run -e BASE_URL=... -e JWT_SECRET=... load-tests/k6/scenarios/typing-storm.js
 */
import { Counter, Rate, Trend } from "k6/metrics";
import { setInterval, clearInterval } from "k6/timers";
import { connect, emitAck, envInt, makeUsersAndRooms, sleepMs, summary, usersOfVu } from "../lib/chat.js";

const ackMs = new Trend("typing_ack_ms", true);
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
};

export const options = {
  setupTimeout: "120s",
  scenarios: { typing: { executor: "per-vu-iterations", vus: cfg.vus, iterations: 1, maxDuration: cfg.durationS + cfg.rampMs / 1000 + 60 + "s" } },
  thresholds: {
    typing_ack_ok: ["rate>0.999"],
    typing_ack_ms: ["p(95)<" + envInt("P95_MS", 50), "p(99)<" + envInt("P99_MS", 150)],
    sio_connect_ok: ["rate>0.99"],
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
    try {
      const c = await connect(u.token, { onEvent: (name) => name === "typing" && received.add(1) });
      await emitAck(c.client, "joinConversation", { conversationId: data.rooms[u.room] });
      connectOk.add(true);
      conns.push({ c: c, room: data.rooms[u.room] });
    } catch (e) {
      connectOk.add(false);
      console.warn(String(e));
    }
  }
  await sleepMs(Math.max(0, data.startAt - Date.now()));
  const endAt = data.startAt + cfg.durationS * 1000;
  await new Promise((resolve) => {
    if (conns.length === 0) return resolve();
    let i = 0;
    const timer = setInterval(() => {
      if (Date.now() >= endAt) {
        clearInterval(timer);
        return resolve();
      }
      const x = conns[i++ % conns.length];
      const t = Date.now();
      sentTyping.add(1);
      emitAck(x.c.client, "typing", { conversationId: x.room }, 10000).then(
        (a) => {
          ackOk.add(!!(a && a.ok));
          ackMs.add(Date.now() - t);
        },
        () => ackOk.add(false),
      );
    }, Math.max(1, Math.floor(1000 / (cfg.perUser * conns.length))));
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
  return summary("typing-storm", data, ["typing_ack_ms", "typing_ack_ok", "typing_sent", "typing_broadcasts_received", "sio_connect_ok"]);
}
