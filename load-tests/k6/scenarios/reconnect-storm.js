/**
 * Reconnect storm: USERS connected users all drop at once (every CYCLE_S seconds) and come back
 * together, re-joining with `sinceSeq` as the SDK does; a SENDERS share keeps sending meanwhile,
 * so the missed messages must come back in `missed`. This is what a node restart behind nginx
 * looks like to the rest of the cluster.
 *   k6 run -e BASE_URL=... -e JWT_SECRET=... load-tests/k6/scenarios/reconnect-storm.js
 */
import { Rate, Trend, Counter } from "k6/metrics";
import { connect, emitAck, envInt, makeUsersAndRooms, sleepMs, summary, usersOfVu } from "../lib/chat.js";

const reconnectMs = new Trend("reconnect", true);
const reconnectOk = new Rate("reconnect_ok");
const caughtUp = new Rate("catch_up_complete");
const missedMsgs = new Counter("missed_recovered");

const cfg = { users: envInt("USERS", 500), rooms: envInt("ROOMS", 50), vus: envInt("VUS", 10), cycles: envInt("CYCLES", 5), cycleS: envInt("CYCLE_S", 10), rampMs: envInt("RAMP_MS", 10000) };

export const options = {
  setupTimeout: "120s",
  scenarios: { storm: { executor: "per-vu-iterations", vus: cfg.vus, iterations: 1, maxDuration: cfg.cycles * cfg.cycleS + cfg.rampMs / 1000 + 120 + "s" } },
  thresholds: {
    reconnect_ok: ["rate>0.99"],
    // In ms here; in seconds in Prometheus (k6_reconnect_p99).
    reconnect: ["p(95)<" + envInt("P95_MS", 1000), "p(99)<" + envInt("P99_MS", 3000)],
    catch_up_complete: ["rate>0.999"],
  },
};

export function setup() {
  const plan = makeUsersAndRooms(cfg.users, cfg.rooms);
  plan.startAt = Date.now() + cfg.rampMs;
  return plan;
}

async function session(u, room, sinceSeq) {
  const st = { lastSeq: sinceSeq || 0 };
  const c = await connect(u.token, {
    onEvent: (name, args) => {
      if (name === "newMessage" && args[0].conversationId === room && args[0].seq > st.lastSeq) st.lastSeq = args[0].seq;
    },
  });
  const payload = sinceSeq === undefined ? { conversationId: room } : { conversationId: room, sinceSeq: sinceSeq };
  const ack = await emitAck(c.client, "joinConversation", payload);
  if (!ack || !ack.ok) throw new Error("join refused " + JSON.stringify(ack));
  if (sinceSeq !== undefined) {
    const missed = ack.missed || [];
    missedMsgs.add(missed.length);
    // Complete when missed covers sinceSeq+1 .. lastSeq without a gap (or says there is more).
    let ok = true;
    for (let i = 0; i < missed.length; i++) if (missed[i].seq !== sinceSeq + 1 + i) ok = false;
    caughtUp.add(ok && (ack.hasMore || sinceSeq + missed.length === ack.lastSeq));
  }
  st.lastSeq = Math.max(st.lastSeq, ack.lastSeq);
  return { c: c, st: st };
}

export default async function (data) {
  const mine = usersOfVu(data.users, __VU, cfg.vus);
  let live = [];
  for (const u of mine) {
    try {
      live.push({ u: u, room: data.rooms[u.room], s: await session(u, data.rooms[u.room]) });
    } catch (e) {
      reconnectOk.add(false);
      console.warn(String(e));
    }
  }
  await sleepMs(Math.max(0, data.startAt - Date.now()));
  for (let cycle = 0; cycle < cfg.cycles; cycle++) {
    // One user in ten keeps talking while the others are away.
    for (let i = 0; i < live.length; i += 10) emitAck(live[i].s.c.client, "sendMessage", { conversationId: live[i].room, message: "cycle " + cycle }).catch(() => {});
    await sleepMs(200);
    for (const x of live) x.s.c.client.close();
    if (live.length) {
      // A message sent while everyone is away: each must get it back in `missed`.
      try {
        const away = await session(live[0].u, live[0].room);
        await emitAck(away.c.client, "sendMessage", { conversationId: live[0].room, message: "while away " + cycle });
        away.c.client.close();
      } catch (e) {
        console.warn(String(e));
      }
    }
    const next = [];
    await Promise.all(
      live.map((x) => {
        const t0 = Date.now();
        return session(x.u, x.room, x.s.st.lastSeq).then(
          (s) => {
            reconnectOk.add(true);
            reconnectMs.add(Date.now() - t0);
            next.push({ u: x.u, room: x.room, s: s });
          },
          (e) => {
            reconnectOk.add(false);
            console.warn(String(e));
          },
        );
      }),
    );
    live = next;
    await sleepMs(cfg.cycleS * 1000);
  }
  for (const x of live) x.s.c.client.close();
}

export function handleSummary(data) {
  return summary("reconnect-storm", data, ["reconnect", "reconnect_ok", "catch_up_complete", "missed_recovered"]);
}
