/**
 * The reconnect workload (reconnect-storm.js, the `reconnects` part of mixed.js). USERS users in
 * ROOMS conversations; the first SENDERS_PER_ROOM members of each conversation stay connected and
 * keep sending, everybody else drops and comes back, and every re-join with `sinceSeq` must bring
 * back exactly what was sent meanwhile.
 *
 * DROP=client (default): CYCLES times, every CYCLE_S seconds, all droppers cut their transport at
 * once (no Socket.IO `41`, as a lost network), stay away AWAY_MS, in the middle of which every
 * sender sends MISSED_PER_CYCLE messages, and come back together: a reconnect storm with a
 * catch-up that cannot be empty (`catch_up_nonempty`).
 * DROP=server: nobody drops on purpose; for DURATION_S every sender sends a message each
 * SEND_INTERVAL_MS while the operator stops or restarts nodes, and every user reconnects with
 * socket.io-client's backoff. At least MIN_DISCONNECTS losses must happen, or the run measured
 * nothing and fails.
 * Both: every message must reach every member within DELIVERY_TIMEOUT_MS, live or by catch-up.
 */
import exec from "k6/execution";
import { setInterval, clearInterval } from "k6/timers";
import { abortUnless, envChoice, envInt, reconnectConfig, seconds } from "./config.js";
import { createDeliveryTracker, stampText } from "./delivery.js";
import { catchUpNonEmpty, duplicateDeliveries, sioDisconnects } from "./metrics.js";
import { createSession, sleepMs } from "./session.js";
import { makeUsersAndRooms, usersOfSlot } from "./setup.js";
import { closeAccounts } from "./fanout.js";

export function reconnectsConfig(prefix, d) {
  const p = prefix || "";
  const cfg = {
    users: envInt(p + "USERS", d.users, 2),
    rooms: envInt(p + "ROOMS", d.rooms, 1),
    vus: envInt(p + "VUS", d.vus, 1),
    drop: envChoice("DROP", ["client", "server"], "client"),
    cycles: envInt("CYCLES", d.cycles, 1),
    cycleS: envInt("CYCLE_S", d.cycleS || 10, 1),
    awayMs: envInt("AWAY_MS", 2000, 1),
    sendersPerRoom: envInt("SENDERS_PER_ROOM", 1, 1),
    missedPerCycle: envInt("MISSED_PER_CYCLE", 3, 1),
    durationS: envInt("DURATION_S", d.durationS || 60, 1),
    sendIntervalMs: envInt("SEND_INTERVAL_MS", 1000, 10),
    minDisconnects: envInt("MIN_DISCONNECTS", 1),
    rampMs: envInt("RAMP_MS", d.rampMs || 10000),
    deliveryTimeoutMs: envInt("DELIVERY_TIMEOUT_MS", 10000, 1),
    sendTimeoutMs: envInt("SEND_TIMEOUT_MS", 10000, 1),
    ackTimeoutMs: envInt("ACK_TIMEOUT_MS", 5000, 1),
    connectTimeoutMs: envInt("CONNECT_TIMEOUT_MS", 10000, 1),
    drainMs: envInt("DRAIN_MS", 3000),
    sweepMs: envInt("SWEEP_MS", 500, 10),
    reconnect: reconnectConfig(true),
  };
  if (cfg.awayMs >= cfg.cycleS * 1000) throw new Error("AWAY_MS (" + cfg.awayMs + ") must be shorter than CYCLE_S (" + cfg.cycleS + " s)");
  if (cfg.users < cfg.rooms * (cfg.sendersPerRoom + 1)) {
    throw new Error(p + "USERS (" + cfg.users + ") must give every one of " + p + "ROOMS (" + cfg.rooms + ") SENDERS_PER_ROOM (" + cfg.sendersPerRoom + ") senders and one user who drops");
  }
  if (cfg.vus > cfg.users) throw new Error(p + "VUS must not exceed " + p + "USERS");
  return cfg;
}

/** The time the load runs after the ramp. */
export function reconnectsWindowMs(cfg) {
  return cfg.drop === "client" ? cfg.cycles * cfg.cycleS * 1000 : cfg.durationS * 1000;
}

export function reconnectsScenario(cfg, extra) {
  const maxMs = cfg.rampMs + reconnectsWindowMs(cfg) + cfg.drainMs + cfg.sendTimeoutMs + 60000;
  return Object.assign({ executor: "per-vu-iterations", vus: cfg.vus, iterations: 1, maxDuration: seconds(maxMs) }, extra || {});
}

export function reconnectsThresholds(cfg, sel) {
  const s = sel || "";
  const client = cfg.drop === "client";
  const th = {};
  // Time to fail: the ramp, then long enough that a handful of samples cannot stop the run.
  const grace = cfg.rampMs + envInt("ABORT_GRACE_MS", 30000);
  th["reconnect_ok" + s] = ["rate>0.99"];
  // DROP=client times the return from the scheduled moment; DROP=server from the loss, backoff included.
  th["reconnect" + s] = ["p(95)<" + envInt("RECONNECT_P95_MS", client ? 1000 : 5000), "p(99)<" + envInt("RECONNECT_P99_MS", client ? 3000 : 10000)];
  th["catch_up_complete" + s] = ["rate>0.999"];
  th["delivery_ratio" + s] = ["rate>=0.999", abortUnless("rate>=" + envInt("ABORT_DELIVERY_PCT", 90) / 100, grace)];
  th["messages_delivered" + s] = ["count>0"];
  th["send_ok" + s] = ["rate>0.999", abortUnless("rate>=" + envInt("ABORT_SEND_OK_PCT", 90) / 100, grace)];
  th["duplicate_deliveries" + s] = ["count==0"];
  if (client) th["catch_up_nonempty" + s] = ["rate>=0.99"];
  else th["sio_disconnects" + s] = ["count>=" + cfg.minDisconnects];
  return th;
}

export function reconnectsSetup(runId, cfg, kind) {
  return makeUsersAndRooms(runId, kind || "c", cfg.users, cfg.rooms);
}

export async function reconnectsIteration(plan, cfg, startAt, runId) {
  const slot = exec.scenario.iterationInTest;
  const mine = usersOfSlot(plan.users, slot, cfg.vus);
  const tracker = createDeliveryTracker({ timeoutMs: cfg.deliveryTimeoutMs, runId: runId });
  duplicateDeliveries.add(0);
  sioDisconnects.add(0);
  const entries = [];
  for (const u of mine) {
    const room = plan.rooms[u.room];
    const sender = plan.members[u.room].indexOf(u.id) < cfg.sendersPerRoom;
    let member;
    const s = createSession(u, [room], {
      reconnect: cfg.reconnect,
      connectTimeoutMs: cfg.connectTimeoutMs,
      ackTimeoutMs: cfg.ackTimeoutMs,
      sendTimeoutMs: cfg.sendTimeoutMs,
      onJoined: (r, from) => {
        member = tracker.member(r, from, Date.now());
      },
      onMessage: (r, m, via) => member && tracker.receive(member, m, via, Date.now()),
      onRejoined: (r, info) => {
        if (cfg.drop === "client" && !sender) catchUpNonEmpty.add(info.lastSeq > info.since);
      },
    });
    entries.push({ s: s, room: room, u: u, sender: sender });
  }
  for (const x of entries) await x.s.start(startAt);
  const sweeper = setInterval(() => tracker.sweep(Date.now()), cfg.sweepMs);
  await sleepMs(startAt - Date.now());
  const senders = entries.filter((x) => x.sender);
  const droppers = entries.filter((x) => !x.sender);
  let n = 0;
  const sendFrom = (x) =>
    x.s.send(x.room, stampText(runId, x.u.id, n, Date.now()), "k6-" + slot + "-" + n++).then((r) => {
      if (r.ok && r.message) tracker.know(x.room, r.message.seq, Date.now());
    });
  if (cfg.drop === "client") {
    for (let c = 0; c < cfg.cycles; c++) {
      const t = startAt + c * cfg.cycleS * 1000;
      await sleepMs(t - Date.now());
      for (const x of droppers) x.s.drop();
      await sleepMs(t + cfg.awayMs / 2 - Date.now());
      // Sent while every dropper is away: each must come back in `missed`.
      await Promise.all(
        senders.map(async (x) => {
          for (let k = 0; k < cfg.missedPerCycle; k++) await sendFrom(x);
        }),
      );
      await sleepMs(t + cfg.awayMs - Date.now());
      const deadline = t + cfg.cycleS * 1000 - 200;
      await Promise.all(droppers.map((x) => x.s.resume(deadline)));
    }
    await sleepMs(startAt + cfg.cycles * cfg.cycleS * 1000 - Date.now());
  } else {
    const endAt = startAt + cfg.durationS * 1000;
    const inflight = [];
    await new Promise((resolve) => {
      const timer = setInterval(() => {
        if (Date.now() >= endAt) {
          clearInterval(timer);
          resolve();
          return;
        }
        for (const x of senders) inflight.push(sendFrom(x));
      }, cfg.sendIntervalMs);
    });
    await Promise.all(inflight);
  }
  await sleepMs(cfg.drainMs);
  await closeAccounts(tracker, entries, cfg.ackTimeoutMs);
  clearInterval(sweeper);
  for (const x of entries) x.s.close();
}
