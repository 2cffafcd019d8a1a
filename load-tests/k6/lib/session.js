/**
 * A chat user's Socket.IO connection in k6, as socket.io-client and the project's SDK keep one:
 *
 * - `openSocket()`: one handshake over k6/websockets (Engine.IO v4 + Socket.IO v5 by ./sio.js),
 *   with a fresh cookie jar so that nginx's `chat_sticky` cookie does not pin a VU to one node.
 * - `createSession()`: joins its conversations; when the connection is lost (not closed by the
 *   script) it reconnects with socket.io-client's backoff (./backoff.js) and re-joins with
 *   `sinceSeq`, taking `missed` and, when `hasMore`, REST pages `after=`; a server refusal
 *   (`connect_error`) or a server-side disconnect (`41`) ends it, as they end socket.io-client's.
 *   Sends carry a `clientMessageId` and are retried on the next connection until answered or
 *   SEND_TIMEOUT_MS, as the SDK does; the server's idempotency makes the retries safe.
 *
 * Every acknowledgement has a timer, and every pending one is failed at once when its connection
 * goes, so nothing keeps an iteration alive after its socket closed.
 */
import { check } from "k6";
import http from "k6/http";
import { WebSocket } from "k6/websockets";
import { setTimeout, clearTimeout } from "k6/timers";
import { createSioClient, socketUrl } from "./sio.js";
import { BASE_URL, envInt } from "./config.js";
import { ClientEvent, ServerEvent } from "./events.js";
import { createBackoff } from "./backoff.js";
import {
  catchUpComplete,
  duplicateDeliveries,
  messagesSent,
  missedRecovered,
  reconnectMs,
  reconnectOk,
  sendAckMs,
  sendOk,
  sendRetries,
  sioConnect,
  sioConnectOk,
  sioConnectRefused,
  sioDisconnects,
} from "./metrics.js";

/** Messages per REST catch-up page (the contract's maximum `limit`) and pages per re-join. */
const PAGE = 200;
const MAX_PAGES = 10;
const LOG_FIRST = envInt("LOG_FAILURES", 10);

const logged = {};
/** console.warn, the first LOG_FAILURES lines of a kind per VU, then every 100th with its count. */
export function warnLimited(kind, text) {
  const n = (logged[kind] = (logged[kind] || 0) + 1);
  if (n <= LOG_FIRST) console.warn(kind + ": " + text);
  else if (n % 100 === 0) console.warn(kind + " (" + n + " so far on this VU): " + text);
}

/** An Error with a `reason`: timeout | refused | ws_error | closed | disconnected | join. */
function failure(reason, detail) {
  const e = new Error(reason + ": " + detail);
  e.reason = reason;
  return e;
}

function merge(base, extra) {
  return extra ? Object.assign({}, extra, base) : base;
}

/**
 * One handshake. handlers: onEvent(name, args), onDisconnect(reason) once connected. Resolves
 * { ws, client, connectMs } on Socket.IO's connect; rejects with an Error whose `reason` says why.
 */
export function openSocket(token, handlers, timeoutMs) {
  const h = handlers || {};
  const ms = timeoutMs || 10000;
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const params = __ENV.STICKY_PER_VU === "1" ? { tags: { name: "socket.io" } } : { jar: new http.CookieJar(), tags: { name: "socket.io" } };
    let ws;
    try {
      ws = new WebSocket(socketUrl(BASE_URL), null, params);
    } catch (e) {
      reject(failure("ws_error", String(e)));
      return;
    }
    let done = false;
    const fail = (err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        ws.close();
      } catch {
        /* already closed */
      }
      reject(err);
    };
    const timer = setTimeout(() => fail(failure("timeout", "no Socket.IO connect within " + ms + " ms")), ms);
    const client = createSioClient(ws, {
      auth: { token: token },
      onConnect: () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve({ ws: ws, client: client, connectMs: Date.now() - t0 });
      },
      onConnectError: (message) => fail(failure("refused", message)),
      onEvent: (name, args) => h.onEvent && h.onEvent(name, args),
      onDisconnect: (reason) => done && h.onDisconnect && h.onDisconnect(reason),
    }).attach();
    ws.addEventListener("error", (e) => fail(failure("ws_error", e && e.error ? String(e.error) : "WebSocket error")));
    // The upgrade succeeded but the server closed before Socket.IO's `40` (a node going away).
    ws.addEventListener("close", () => fail(failure("closed", "closed before the Socket.IO connect")));
  });
}

/**
 * A user's session over its conversations `roomIds`.
 * o: {
 *   reconnect: { enabled, min, max, jitter, attempts },  (lib/config.js reconnectConfig)
 *   connectTimeoutMs, ackTimeoutMs, sendTimeoutMs,
 *   tags?: () => object                       added to every sample (e.g. { phase })
 *   onJoined?(roomId, fromSeq)                first join of a room: what it must receive from now on
 *   onMessage?(roomId, message, via)          first arrival of a seq, live or catch_up
 *   onRejoined?(roomId, { since, lastSeq, recovered, complete })
 *   onEvent?(name, payload)                   any other server event (typing, presence)
 * }
 */
export function createSession(user, roomIds, o) {
  const tagsOf = o.tags || (() => undefined);
  // A copy: stopReconnecting() switches it off for this session only.
  const rc = Object.assign({ enabled: false, attempts: 0 }, o.reconnect);
  const backoff = createBackoff({ min: rc.min, max: rc.max, jitter: rc.jitter });
  const rooms = roomIds.map((id) => ({ id: id, from: undefined, watermark: 0, seen: {}, live: {}, early: [] }));
  const byId = {};
  for (const r of rooms) byId[r.id] = r;
  let conn = null;
  let epoch = 0;
  let joined = false;
  /** idle | connecting | joined | waiting | away | down | closed */
  let state = "idle";
  let lostAt = 0;
  let retryTimer = null;
  let pending = {};
  let waiters = [];

  function tags(extra) {
    return merge(extra || {}, tagsOf());
  }

  function settleWaiters(ok) {
    const w = waiters;
    waiters = [];
    for (const x of w) {
      clearTimeout(x.timer);
      x.resolve(ok);
    }
  }

  function rejectPending(reason) {
    const p = pending;
    pending = {};
    for (const k in p) {
      clearTimeout(p[k].timer);
      p[k].reject(failure("disconnected", reason));
    }
  }

  /** Forgets the current connection and closes its transport; no disconnect is counted. */
  function dropConn(why) {
    const c = conn;
    conn = null;
    joined = false;
    if (!c) return;
    c.client.dropAcks();
    rejectPending(why);
    c.client.close();
  }

  function emitAck(event, payload, timeoutMs) {
    return new Promise((resolve, reject) => {
      const c = conn;
      if (!c) {
        reject(failure("disconnected", event + " while not connected"));
        return;
      }
      let key;
      let id;
      const timer = setTimeout(() => {
        if (id !== undefined) c.client.cancelAck(id);
        delete pending[key];
        reject(failure("timeout", event + " not acknowledged within " + timeoutMs + " ms"));
      }, Math.max(1, timeoutMs));
      try {
        id = c.client.emit(event, payload, (args) => {
          clearTimeout(timer);
          delete pending[key];
          resolve(args[0]);
        });
      } catch (e) {
        clearTimeout(timer);
        reject(failure("disconnected", String(e)));
        return;
      }
      key = c.epoch + ":" + id;
      pending[key] = { reject: reject, timer: timer };
    });
  }

  function arrive(r, m, via) {
    const q = m.seq;
    if (typeof q !== "number") return;
    if (via === "live") {
      if (r.live[q]) {
        duplicateDeliveries.add(1, tagsOf());
        return;
      }
      r.live[q] = true;
    }
    if (q <= r.watermark || r.seen[q]) return;
    r.seen[q] = true;
    while (r.seen[r.watermark + 1]) {
      delete r.seen[r.watermark + 1];
      r.watermark++;
    }
    if (o.onMessage) o.onMessage(r.id, m, via);
  }

  function onEvent(ep, name, args) {
    if (!conn || conn.epoch !== ep) return;
    const payload = args[0];
    if (name === ServerEvent.newMessage) {
      const r = payload && byId[payload.conversationId];
      if (!r) return;
      // A message broadcast between the join and its acknowledgement: kept until lastSeq is known.
      if (r.from === undefined) {
        if (r.early.length < 1000) r.early.push(payload);
        return;
      }
      arrive(r, payload, "live");
      return;
    }
    if (o.onEvent) o.onEvent(name, payload);
  }

  function onLost(ep, reason) {
    if (!conn || conn.epoch !== ep) return;
    const c = conn;
    const wasJoined = joined;
    conn = null;
    joined = false;
    c.client.dropAcks();
    rejectPending(reason);
    // Lost during its own join: the attempt fails and decides what comes next.
    if (!wasJoined || state === "closed") return;
    sioDisconnects.add(1, tagsOf());
    warnLimited("disconnected", user.id + ": " + reason);
    lostAt = Date.now();
    if (reason === "io server disconnect") {
      // socket.io-client does not reconnect after a server-side disconnect() either.
      c.client.close();
      giveUp(true);
      return;
    }
    if (!rc.enabled) {
      state = "down";
      settleWaiters(false);
      return;
    }
    backoff.reset();
    scheduleRetry();
  }

  function giveUp(counted) {
    if (retryTimer) clearTimeout(retryTimer);
    retryTimer = null;
    if (counted && rc.enabled) reconnectOk.add(false, tagsOf());
    state = "down";
    settleWaiters(false);
  }

  function scheduleRetry() {
    if (!rc.enabled || (rc.attempts > 0 && backoff.attempts() >= rc.attempts)) return giveUp(true);
    state = "waiting";
    retryTimer = setTimeout(() => {
      retryTimer = null;
      attempt("reconnect").then(
        () => {
          reconnectMs.add(Date.now() - lostAt, tagsOf());
          reconnectOk.add(true, tagsOf());
        },
        (e) => {
          if (state === "closed" || state === "down") return;
          if (e.reason === "refused") return giveUp(true);
          scheduleRetry();
        },
      );
    }, backoff.next());
  }

  function handleJoinAck(r, ack, since) {
    if (r.from === undefined) {
      r.from = ack.lastSeq;
      r.watermark = ack.lastSeq;
      if (o.onJoined) o.onJoined(r.id, r.from);
      const early = r.early;
      r.early = [];
      for (const m of early) arrive(r, m, "live");
      return;
    }
    let complete = true;
    let prev = since;
    let recovered = 0;
    const take = (list) => {
      for (const m of list) {
        if (m.seq !== prev + 1) complete = false;
        prev = m.seq;
        const before = r.watermark;
        const had = m.seq <= before || r.seen[m.seq];
        arrive(r, m, "catch_up");
        if (!had) recovered++;
      }
    };
    take(ack.missed || []);
    let more = ack.hasMore === true;
    for (let page = 0; more && page < MAX_PAGES; page++) {
      const res = http.get(BASE_URL + "/conversations/" + r.id + "/messages?after=" + prev + "&limit=" + PAGE, {
        headers: { authorization: "Bearer " + user.token },
        tags: { name: "GET messages catch-up" },
      });
      if (res.status !== 200) {
        complete = false;
        break;
      }
      const list = res.json("messages") || [];
      take(list);
      more = res.json("hasMore") === true && list.length > 0;
    }
    if (more) complete = false;
    for (let q = since + 1; complete && q <= ack.lastSeq; q++) if (q > r.watermark && !r.seen[q]) complete = false;
    catchUpComplete.add(complete, tagsOf());
    missedRecovered.add(recovered, tagsOf());
    if (o.onRejoined) o.onRejoined(r.id, { since: since, lastSeq: ack.lastSeq, recovered: recovered, complete: complete });
  }

  async function joinAll() {
    for (const r of rooms) {
      const since = r.from === undefined ? undefined : r.watermark;
      const payload = since === undefined ? { conversationId: r.id } : { conversationId: r.id, sinceSeq: since };
      const ack = await emitAck(ClientEvent.joinConversation, payload, o.ackTimeoutMs || 10000);
      if (!ack || !ack.ok) throw failure("join", r.id + " refused " + JSON.stringify(ack && ack.error));
      handleJoinAck(r, ack, since);
    }
  }

  function attempt(phase) {
    state = "connecting";
    const ep = ++epoch;
    return openSocket(user.token, { onEvent: (n, a) => onEvent(ep, n, a), onDisconnect: (why) => onLost(ep, why) }, o.connectTimeoutMs).then(
      (c) => {
        if (state === "closed") {
          c.client.close();
          throw failure("closed", "session closed");
        }
        conn = { ws: c.ws, client: c.client, epoch: ep };
        for (const r of rooms) r.live = {};
        return joinAll().then(
          () => {
            sioConnect.add(c.connectMs, tags({ attempt: phase }));
            sioConnectOk.add(true, tags({ attempt: phase }));
            check(true, { "connected and joined": (v) => v }, tags({ attempt: phase }));
            joined = true;
            state = "joined";
            backoff.reset();
            settleWaiters(true);
          },
          (e) => {
            // A failed join must not leave its socket open.
            if (conn && conn.epoch === ep) dropConn("join failed");
            throw e;
          },
        );
      },
    ).catch((e) => {
      if (e.reason !== "closed" || state !== "closed") {
        sioConnectOk.add(false, tags({ attempt: phase }));
        check(false, { "connected and joined": (v) => v }, tags({ attempt: phase }));
        if (e.reason === "refused") sioConnectRefused.add(1, tagsOf());
        warnLimited("connect failed", user.id + " (" + phase + "): " + e.message);
      }
      throw e;
    });
  }

  /** Connects and joins, retrying with backoff (when reconnection is on) until `deadline`. */
  function connectUntil(phase, deadline, measureFrom) {
    return new Promise((resolve) => {
      const once = () => {
        attempt(phase).then(
          () => {
            if (measureFrom !== undefined) {
              reconnectMs.add(Date.now() - measureFrom, tagsOf());
              reconnectOk.add(true, tagsOf());
            }
            resolve(true);
          },
          (e) => {
            if (state === "closed") return resolve(false);
            const delay = backoff.next();
            const more = rc.enabled && e.reason !== "refused" && !(rc.attempts > 0 && backoff.attempts() > rc.attempts);
            if (!more || Date.now() + delay > deadline) {
              if (measureFrom !== undefined) reconnectOk.add(false, tagsOf());
              state = "down";
              settleWaiters(false);
              return resolve(false);
            }
            state = "waiting";
            retryTimer = setTimeout(() => {
              retryTimer = null;
              once();
            }, delay);
          },
        );
      };
      once();
    });
  }

  function waitJoined(deadline) {
    if (joined) return Promise.resolve(true);
    if (state === "down" || state === "closed" || state === "away") return Promise.resolve(false);
    return new Promise((resolve) => {
      const w = { resolve: resolve, timer: null };
      w.timer = setTimeout(() => {
        waiters = waiters.filter((x) => x !== w);
        resolve(false);
      }, Math.max(1, deadline - Date.now()));
      waiters.push(w);
    });
  }

  const session = {
    user: user,
    rooms: rooms,
    isJoined: () => joined,
    state: () => state,
    /** The room's highest seq up to which nothing is missing (what `sinceSeq` asks from). */
    watermark: (roomId) => byId[roomId].watermark,

    /** First connection: resolves true once joined, false when it gave up (at `deadline` at the latest). */
    start(deadline) {
      return connectUntil("initial", deadline);
    },

    emitAck: emitAck,

    /**
     * Sends `text` to `roomId` with `clientMessageId`, retried as the SDK does; resolves
     * { ok, message?, code?, ms } and records messages_sent, send_ok, send_ack, send_retries.
     */
    send(roomId, text, clientMessageId) {
      const t0 = Date.now();
      const deadline = t0 + (o.sendTimeoutMs || 10000);
      messagesSent.add(1, tagsOf());
      const finish = (ok, code, message) => {
        sendOk.add(ok, tagsOf());
        check(ok, { "send acknowledged": (v) => v }, tagsOf());
        if (ok) sendAckMs.add(Date.now() - t0, tagsOf());
        else warnLimited("send failed", user.id + ": " + code);
        return { ok: ok, code: code, message: message, ms: Date.now() - t0 };
      };
      const payload = { conversationId: roomId, message: text, clientMessageId: clientMessageId };
      const once = (retry) => {
        if (retry) sendRetries.add(1, tagsOf());
        if (!joined) {
          if (!rc.enabled) return Promise.resolve(finish(false, "DISCONNECTED"));
          return waitJoined(deadline).then((ok) => (ok ? once(false) : finish(false, "DISCONNECTED")));
        }
        return emitAck(ClientEvent.sendMessage, payload, Math.min(o.ackTimeoutMs || 10000, deadline - Date.now())).then(
          (ack) => {
            if (ack && ack.ok) return finish(true, undefined, ack.message);
            const code = ack && ack.error ? ack.error.code : "NO_ANSWER";
            if ((code === "RATE_LIMITED" || code === "UNAVAILABLE") && Date.now() + 1000 < deadline) return sleepMs(1000).then(() => once(true));
            return finish(false, code);
          },
          (e) => {
            if (rc.enabled && Date.now() < deadline && state !== "closed") return once(true);
            return finish(false, e.reason === "timeout" ? "ACK_TIMEOUT" : "DISCONNECTED");
          },
        );
      };
      return once(false);
    },

    /** Cuts the transport, as a lost network does (no Socket.IO `41`), and does not reconnect by itself. */
    drop() {
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = null;
      const c = conn;
      conn = null;
      joined = false;
      state = "away";
      lostAt = Date.now();
      if (!c) return;
      c.client.dropAcks();
      rejectPending("dropped by the script");
      c.ws.close();
    },

    /** After drop(): connects again now, retrying with backoff until `deadline`; `reconnect` is measured from now. */
    resume(deadline) {
      backoff.reset();
      return connectUntil("reconnect", deadline, Date.now());
    },

    /** The run's end: a reconnection still waiting counts as failed, and none starts any more. */
    stopReconnecting() {
      if (state === "waiting") giveUp(true);
      rc.enabled = false;
    },

    close() {
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = null;
      const wasWaiting = state === "waiting";
      state = "closed";
      if (wasWaiting && rc.enabled) reconnectOk.add(false, tagsOf());
      settleWaiters(false);
      dropConn("closed by the script");
    },
  };
  return session;
}

export function sleepMs(ms) {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}
