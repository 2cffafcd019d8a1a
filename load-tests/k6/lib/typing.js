/**
 * The typing workload (typing-storm.js, the `typing` part of mixed.js): every user types
 * continuously (TYPING_PER_SEC `typing` events a second) in its conversation for DURATION_S, then
 * sends `stopTyping`; everybody stays connected SETTLE_MS longer, so that the `false` of users on
 * other VUs arrives too.
 *
 * What the contract promises, measured per (receiver, other member) pair: while a user types
 * faster than the node's TYPING_TIMEOUT_MS, each other member receives one `isTyping: true` and,
 * after its stopTyping, one `false` at once. `typing_pairs_complete` (saw true, and false last)
 * fails a server that broadcasts no typing, or ends it late; `typing_stop_delay` (from the
 * scheduled stop to each `false`) fails one that ends typing only by its timeout;
 * `typing_broadcasts_received` <= BROADCAST_MARGIN × one true and one false per typing window and
 * pair fails one that re-broadcasts every event.
 */
import { check } from "k6";
import exec from "k6/execution";
import { setInterval, clearInterval } from "k6/timers";
import { abortUnless, envInt, envNum, reconnectConfig, seconds } from "./config.js";
import { ClientEvent, ServerEvent } from "./events.js";
import { typingAckMs, typingAckOk, typingPairsComplete, typingReceived, typingSent, typingStopDelay } from "./metrics.js";
import { createSession, sleepMs, warnLimited } from "./session.js";
import { makeUsersAndRooms, usersOfSlot } from "./setup.js";

export function typingConfig(prefix, d) {
  const p = prefix || "";
  const timeout = envInt("TYPING_TIMEOUT_MS", 3000, 1);
  const cfg = {
    users: envInt(p + "USERS", d.users, 2),
    rooms: envInt(p + "ROOMS", d.rooms, 1),
    vus: envInt(p + "VUS", d.vus, 1),
    perUser: envNum("TYPING_PER_SEC", d.perUser),
    durationS: envInt("DURATION_S", d.durationS, 1),
    rampMs: envInt("RAMP_MS", d.rampMs || 10000),
    /** The nodes' TYPING_TIMEOUT_MS: a user typing at least this often stays in one window. */
    typingTimeoutMs: timeout,
    settleMs: envInt("SETTLE_MS", 2000),
    tickMs: envInt("TICK_MS", 10, 1),
    ackTimeoutMs: envInt("ACK_TIMEOUT_MS", 5000, 1),
    connectTimeoutMs: envInt("CONNECT_TIMEOUT_MS", 10000, 1),
    margin: envNum("BROADCAST_MARGIN", 1.5, 1),
    reconnect: reconnectConfig(false),
  };
  if (cfg.users < 2 * cfg.rooms) throw new Error(p + "USERS (" + cfg.users + ") must be at least twice " + p + "ROOMS: a conversation needs two members to see typing");
  if (cfg.vus > cfg.users) throw new Error(p + "VUS must not exceed " + p + "USERS");
  return cfg;
}

export function typingMaxMs(cfg) {
  return cfg.rampMs + cfg.durationS * 1000 + cfg.settleMs + cfg.ackTimeoutMs + 60000;
}

export function typingScenario(cfg, extra) {
  return Object.assign({ executor: "per-vu-iterations", vus: cfg.vus, iterations: 1, maxDuration: seconds(typingMaxMs(cfg)) }, extra || {});
}

/** Ordered (receiver, typer) pairs: user i is in room i % rooms. */
export function typingPairs(cfg) {
  let pairs = 0;
  for (let r = 0; r < cfg.rooms; r++) {
    const size = Math.floor(cfg.users / cfg.rooms) + (r < cfg.users % cfg.rooms ? 1 : 0);
    pairs += size * (size - 1);
  }
  return pairs;
}

/**
 * The most `typing` broadcasts the run may receive when the server broadcasts transitions only:
 * one window per user while it types faster than half the timeout, else at most one per event;
 * each window is one `true` and one `false` to each other member.
 */
export function maxTypingBroadcasts(cfg) {
  const intervalMs = cfg.perUser > 0 ? 1000 / cfg.perUser : Infinity;
  const windows = intervalMs * 2 < cfg.typingTimeoutMs ? 1 : Math.ceil(cfg.perUser * cfg.durationS) + 1;
  return Math.ceil(cfg.margin * 2 * windows * typingPairs(cfg));
}

export function typingThresholds(cfg, sel) {
  const s = sel || "";
  const th = {};
  // Time to fail: the ramp, then long enough that a handful of samples cannot stop the run.
  const grace = cfg.rampMs + envInt("ABORT_GRACE_MS", 30000);
  th["typing_ack_ok" + s] = ["rate>0.999", abortUnless("rate>=0.5", grace)];
  th["typing_ack" + s] = ["p(95)<" + envInt("TYPING_P95_MS", 50), "p(99)<" + envInt("TYPING_P99_MS", 150)];
  th["typing_pairs_complete" + s] = ["rate>=" + envInt("PAIRS_PCT", 99) / 100];
  th["typing_stop_delay" + s] = ["p(99)<" + envInt("STOP_P99_MS", Math.min(1000, Math.floor(cfg.typingTimeoutMs / 2)))];
  th["typing_broadcasts_received" + s] = ["count<=" + maxTypingBroadcasts(cfg)];
  th["sio_connect_ok" + s] = ["rate>0.99", abortUnless("rate>=0.5", grace)];
  return th;
}

export function typingSetup(runId, cfg, kind) {
  return makeUsersAndRooms(runId, kind || "t", cfg.users, cfg.rooms);
}

export async function typingIteration(plan, cfg, startAt) {
  const mine = usersOfSlot(plan.users, exec.scenario.iterationInTest, cfg.vus);
  const endAt = startAt + cfg.durationS * 1000;
  const conns = [];
  for (const u of mine) {
    const roomId = plan.rooms[u.room];
    const heard = {};
    const s = createSession(u, [roomId], {
      reconnect: cfg.reconnect,
      connectTimeoutMs: cfg.connectTimeoutMs,
      ackTimeoutMs: cfg.ackTimeoutMs,
      onEvent: (name, ev) => {
        if (name !== ServerEvent.typing || !ev || ev.conversationId !== roomId) return;
        typingReceived.add(1);
        const h = heard[ev.userId] || (heard[ev.userId] = { trues: 0, falses: 0, last: undefined });
        if (ev.isTyping) h.trues++;
        else {
          h.falses++;
          const now = Date.now();
          if (now >= endAt) typingStopDelay.add(now - endAt);
        }
        h.last = ev.isTyping;
      },
    });
    if (await s.start(startAt)) conns.push({ s: s, u: u, room: roomId, heard: heard });
    else s.close();
  }
  await sleepMs(startAt - Date.now());
  // What the schedule owes (elapsed × rate) is sent on every tick, so late ticks catch up and the
  // offered rate is TYPING_PER_SEC per user whatever the tick; users take turns.
  const perVuRate = cfg.perUser * conns.length;
  const acks = [];
  if (conns.length > 0 && perVuRate > 0) {
    await new Promise((resolve) => {
      // The schedule runs from startAt, so each VU owes exactly rate × DURATION_S by endAt.
      const t0 = startAt;
      let n = 0;
      const timer = setInterval(() => {
        const now = Date.now();
        const due = Math.floor(((Math.min(now, endAt) - t0) * perVuRate) / 1000);
        while (n < due) {
          const x = conns[n++ % conns.length];
          const t = Date.now();
          typingSent.add(1);
          acks.push(
            x.s.emitAck(ClientEvent.typing, { conversationId: x.room }, cfg.ackTimeoutMs).then(
              (a) => {
                typingAckOk.add(!!(a && a.ok));
                check(a, { "typing acknowledged": (v) => !!(v && v.ok) });
                typingAckMs.add(Date.now() - t);
              },
              (e) => {
                typingAckOk.add(false);
                check(false, { "typing acknowledged": (v) => v });
                warnLimited("typing failed", x.u.id + ": " + e);
              },
            ),
          );
        }
        if (now >= endAt) {
          clearInterval(timer);
          resolve();
        }
      }, cfg.tickMs);
    });
  }
  await sleepMs(endAt - Date.now());
  // Everyone stops at the same scheduled moment, so each `false` can be timed from endAt.
  await Promise.all(
    conns.map((x) =>
      x.s.emitAck(ClientEvent.stopTyping, { conversationId: x.room }, cfg.ackTimeoutMs).then(
        (a) => {
          if (!a || !a.ok) warnLimited("stopTyping refused", x.u.id + ": " + JSON.stringify(a));
        },
        (e) => warnLimited("stopTyping failed", x.u.id + ": " + e),
      ),
    ),
  );
  await Promise.all(acks);
  await sleepMs(endAt + cfg.settleMs - Date.now());
  for (const x of conns) {
    for (const other of plan.members[x.u.room]) {
      if (other === x.u.id) continue;
      const h = x.heard[other];
      typingPairsComplete.add(!!h && h.trues >= 1 && h.last === false);
    }
    x.s.close();
  }
}
