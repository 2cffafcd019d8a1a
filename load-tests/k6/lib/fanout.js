/**
 * The chat fan-out workload (chat-fanout.js, soak.js, the `chat` part of mixed.js): USERS users
 * in ROOMS conversations on VUS VUs (each VU holds several connections: a k6/websockets socket
 * keeps its iteration alive until closed, so each VU runs one long iteration), RATE messages/s in
 * total for DURATION_S seconds after a RAMP_MS ramp in which every user connects and joins.
 *
 * The send schedule is open: what the clock owes is sent on every tick, whatever the server's
 * pace. Each message carries its send time (lib/delivery.js stampText), so its end-to-end latency
 * is taken at every member it reaches, live or by catch-up after a reconnect. Delivery is counted
 * live by seq (lib/delivery.js); users reconnect with socket.io-client's backoff (RECONNECT=1,
 * lib/session.js), so a cluster that fails over delivers everything by catch-up while a dead one
 * does not: `delivery_ratio` and `sio_disconnects` tell the two apart.
 */
import exec from "k6/execution";
import { setInterval, clearInterval } from "k6/timers";
import { abortUnless, envInt, reconnectConfig, seconds } from "./config.js";
import { createDeliveryTracker, stampText } from "./delivery.js";
import { deliveryRatio, duplicateDeliveries, messagesMissing, sioDisconnects } from "./metrics.js";
import { createSession, sleepMs, warnLimited } from "./session.js";
import { lastSeqByRest, makeUsersAndRooms, usersOfSlot } from "./setup.js";
import { ClientEvent } from "./events.js";

/** Variables (prefixed in mixed.js: CHAT_USERS, ...); `d` holds the scenario's defaults. */
export function fanoutConfig(prefix, d) {
  const p = prefix || "";
  const cfg = {
    users: envInt(p + "USERS", d.users, 1),
    rooms: envInt(p + "ROOMS", d.rooms, 1),
    vus: envInt(p + "VUS", d.vus, 1),
    rate: envInt(p + "RATE", d.rate),
    durationS: envInt("DURATION_S", d.durationS, 1),
    rampMs: envInt("RAMP_MS", d.rampMs || 15000),
    drainMs: envInt("DRAIN_MS", 3000),
    deliveryTimeoutMs: envInt("DELIVERY_TIMEOUT_MS", 10000, 1),
    sendTimeoutMs: envInt("SEND_TIMEOUT_MS", 10000, 1),
    ackTimeoutMs: envInt("ACK_TIMEOUT_MS", 5000, 1),
    connectTimeoutMs: envInt("CONNECT_TIMEOUT_MS", 10000, 1),
    sweepMs: envInt("SWEEP_MS", 500, 10),
    /** Tolerated connection losses in the whole run (`sio_disconnects`). */
    maxDisconnects: envInt("MAX_DISCONNECTS", 0),
    reconnect: reconnectConfig(true),
  };
  if (cfg.users < cfg.rooms) throw new Error(p + "USERS (" + cfg.users + ") must be at least " + p + "ROOMS (" + cfg.rooms + ")");
  if (cfg.vus > cfg.users) throw new Error(p + "VUS (" + cfg.vus + ") must not exceed " + p + "USERS (" + cfg.users + "): a VU without users sends nothing");
  return cfg;
}

/** How long one fan-out iteration runs at most: ramp, window, drain, final checks. */
export function fanoutMaxMs(cfg) {
  return cfg.rampMs + cfg.durationS * 1000 + cfg.drainMs + cfg.sendTimeoutMs + 60000;
}

/** The per-vu-iterations scenario: one iteration per VU, each holding its share of the users. */
export function fanoutScenario(cfg, extra) {
  return Object.assign({ executor: "per-vu-iterations", vus: cfg.vus, iterations: 1, maxDuration: seconds(fanoutMaxMs(cfg)) }, extra || {});
}

/**
 * The fan-out's thresholds, on `sel` (a tag selector such as "{scenario:chat}", or ""). `t` holds
 * the budgets: p95, p99, ackP99, delivery, sendOk, and max (worst latency) when given.
 */
export function fanoutThresholds(cfg, sel, t) {
  const sub = (name, tags) => {
    const parts = [String(sel || "").replace(/[{}]/g, ""), tags || ""].filter((x) => x !== "");
    return parts.length ? name + "{" + parts.join(",") + "}" : name;
  };
  // Time to fail: the ramp, then long enough that a handful of samples cannot stop the run.
  const grace = cfg.rampMs + envInt("ABORT_GRACE_MS", 30000);
  const th = {};
  th[sub("e2e_latency", "via:live")] = ["p(95)<" + t.p95, "p(99)<" + t.p99];
  if (t.max) th[sub("e2e_latency")] = ["max<" + t.max];
  th[sub("send_ack")] = ["p(99)<" + t.ackP99];
  th[sub("delivery_ratio")] = ["rate>=" + t.delivery, abortUnless("rate>=" + envInt("ABORT_DELIVERY_PCT", 90) / 100, grace)];
  th[sub("send_ok")] = ["rate>" + t.sendOk, abortUnless("rate>=" + envInt("ABORT_SEND_OK_PCT", 90) / 100, grace)];
  // First connections; a reconnection's failed attempts are expected while a node is away, so
  // recovering is judged per loss (reconnect_ok), not per attempt.
  th[sub("sio_connect_ok", "attempt:initial")] = ["rate>0.99", abortUnless("rate>=0.5", grace)];
  th[sub("reconnect_ok")] = ["rate>0.99"];
  th[sub("messages_delivered")] = ["count>0"];
  th[sub("duplicate_deliveries")] = ["count==0"];
  th[sub("sio_disconnects")] = ["count<=" + cfg.maxDisconnects];
  return th;
}

export function fanoutSetup(runId, cfg, kind) {
  const plan = makeUsersAndRooms(runId, kind || "u", cfg.users, cfg.rooms);
  return { users: plan.users, rooms: plan.rooms };
}

/**
 * One VU's share. `plan`: fanoutSetup's result; `startAt`: when sending starts (setup's clock);
 * `runId`: the stamp's run id.
 */
export async function fanoutIteration(plan, cfg, startAt, runId) {
  const slot = exec.scenario.iterationInTest;
  const mine = usersOfSlot(plan.users, slot, cfg.vus);
  const tracker = createDeliveryTracker({ timeoutMs: cfg.deliveryTimeoutMs, runId: runId });
  // Both series exist (count 0) in the summary and in Prometheus even when nothing goes wrong.
  duplicateDeliveries.add(0);
  sioDisconnects.add(0);
  const sessions = [];
  for (const u of mine) {
    const roomId = plan.rooms[u.room];
    let member;
    const s = createSession(u, [roomId], {
      reconnect: cfg.reconnect,
      connectTimeoutMs: cfg.connectTimeoutMs,
      ackTimeoutMs: cfg.ackTimeoutMs,
      sendTimeoutMs: cfg.sendTimeoutMs,
      onJoined: (room, from) => {
        member = tracker.member(room, from, Date.now());
      },
      onMessage: (room, m, via) => {
        if (member) tracker.receive(member, m, via, Date.now());
      },
    });
    sessions.push({ s: s, room: roomId, u: u });
  }
  // Connect one after another: a VU's users arrive over the ramp, not in one burst.
  for (const x of sessions) await x.s.start(startAt);
  const sweeper = setInterval(() => tracker.sweep(Date.now()), cfg.sweepMs);
  await sleepMs(startAt - Date.now());
  const endAt = startAt + cfg.durationS * 1000;
  const perVuRate = cfg.rate / cfg.vus;
  const inflight = [];
  let n = 0;
  if (sessions.length > 0 && perVuRate > 0) {
    await new Promise((resolve) => {
      // The schedule runs from startAt, so each VU owes exactly rate × DURATION_S by endAt.
      const t0 = startAt;
      const timer = setInterval(() => {
        const now = Date.now();
        const due = Math.floor(((Math.min(now, endAt) - t0) * perVuRate) / 1000);
        while (n < due) {
          const x = sessions[n % sessions.length];
          const sentAt = Date.now();
          const text = stampText(runId, x.u.id, n, sentAt);
          n++;
          inflight.push(
            x.s.send(x.room, text, "k6-" + slot + "-" + n).then((r) => {
              if (r.ok && r.message) tracker.know(x.room, r.message.seq, Date.now());
            }),
          );
        }
        if (now >= endAt) {
          clearInterval(timer);
          resolve();
        }
      }, Math.max(5, Math.min(100, Math.floor(1000 / perVuRate))));
    });
  }
  // Sends still retrying are answered or given up by SEND_TIMEOUT_MS.
  await Promise.all(inflight);
  await sleepMs(cfg.drainMs);
  await closeAccounts(tracker, sessions, cfg.ackTimeoutMs);
  clearInterval(sweeper);
  for (const x of sessions) x.s.close();
}

/**
 * The end of a run: no more reconnections; the room's last seq, from a joined socket's plain
 * re-join (no sinceSeq: nothing is recovered that way) or from REST, closes every member's
 * account, and what it lacks now is missing. `entries`: [{ s: session, room, u: user }].
 */
export async function closeAccounts(tracker, entries, ackTimeoutMs) {
  for (const x of entries) x.s.stopReconnecting();
  const last = {};
  for (const x of entries) {
    if (last[x.room] !== undefined || !x.s.isJoined()) continue;
    try {
      const ack = await x.s.emitAck(ClientEvent.joinConversation, { conversationId: x.room }, ackTimeoutMs);
      if (ack && ack.ok) last[x.room] = ack.lastSeq;
    } catch (e) {
      warnLimited("final join failed", x.u.id + ": " + e);
    }
  }
  for (const x of entries) if (last[x.room] === undefined) last[x.room] = lastSeqByRest(x.room, x.u.token);
  tracker.finish((room) => last[room], Date.now());
  for (const room in last) {
    if (last[room] !== undefined) continue;
    // How many it missed is unknown: one missing message, so that the ratio cannot pass over it.
    warnLimited("no last seq", room + ": counted as one missing message");
    deliveryRatio.add(false);
    messagesMissing.add(1);
  }
}
