/**
 * The contract's client events on one socket, thin: count, refuse while draining or past the
 * token's expiry, rate-limit, parse against the protocol's schema, call the core, acknowledge.
 * Every failure becomes an error acknowledgement; nothing thrown here reaches Socket.IO.
 */
import type { Logger } from "pino";
import {
  ClientEvent,
  ErrorCode,
  JoinConversationPayload,
  LeaveConversationPayload,
  SendMessagePayload,
  StopTypingPayload,
  TypingPayload,
  compileValidator,
  isClientEvent,
} from "@chat/protocol";
import { AppError, invalid, toAck, toAppError, valid } from "../../errors.ts";
import type { Metrics } from "../../metrics.ts";
import type { RateLimiter } from "../../rate-limit.ts";
import type { ChatCore } from "../../core/chat-core.ts";
import { wallNow } from "../../core/ports.ts";
import { tokenExpired } from "./policies/token-expiry.ts";
import type { ChatSocket, SocketSession } from "./fanout.ts";

const parse = {
  joinConversation: compileValidator(JoinConversationPayload),
  leaveConversation: compileValidator(LeaveConversationPayload),
  sendMessage: compileValidator(SendMessagePayload),
  typing: compileValidator(TypingPayload),
  stopTyping: compileValidator(StopTypingPayload),
};

export interface HandlerDeps {
  core: ChatCore;
  limiter: RateLimiter;
  metrics: Metrics;
  logger: Logger;
  /** In-flight events, so draining can wait for them. */
  inflight: { count: number; onIdle(): void };
  isDraining(): boolean;
}

type Ack = (answer: object) => void;
type Handler = (session: SocketSession, payload: unknown) => Promise<object>;

/** Child loggers are made on first use only: idle sockets are the common case. */
const loggers = new WeakMap<SocketSession, Logger>();

/**
 * Builds the event handling once per server and returns `attach(socket)`. The listeners are shared
 * by every socket (Socket.IO calls them with `this` = the socket; per-socket state is the session in
 * `socket.data`), so an idle socket costs no closures of ours: memory per socket is what scales.
 */
export function createHandlers(d: HandlerDeps): (socket: ChatSocket) => void {
  const { core, limiter } = d;
  const log = (session: SocketSession) => {
    let l = loggers.get(session);
    if (!l) loggers.set(session, (l = d.logger.child({ socketId: session.id, userId: session.userId })));
    return l;
  };

  const fail = (session: SocketSession, err: unknown, event: string, ack: Ack | undefined) => {
    const e = toAppError(err);
    d.metrics.errors.inc({ code: e.code });
    if (e.code === ErrorCode.INTERNAL || e.code === ErrorCode.UNAVAILABLE) log(session).warn({ err: e.cause ?? e, event }, "event failed");
    else if (d.logger.isLevelEnabled("debug")) log(session).debug({ code: e.code, event, reason: e.message }, "event refused");
    ack?.(toAck(e));
  };

  const handlers: Record<ClientEvent, Handler> = {
    async joinConversation(session, payload) {
      return core.join(session, valid(parse.joinConversation(payload)));
    },
    async leaveConversation(session, payload) {
      await core.leave(session, valid(parse.leaveConversation(payload)));
      return {};
    },
    async sendMessage(session, payload) {
      const receivedAt = wallNow();
      limiter.check("send", session.userId);
      const { message, duplicate } = await core.send(session.userId, valid(parse.sendMessage(payload)), session, receivedAt);
      return duplicate ? { message, duplicate } : { message };
    },
    async typing(session, payload) {
      limiter.check("typing", session.userId);
      await core.typing(session, valid(parse.typing(payload)));
      return {};
    },
    async stopTyping(session, payload) {
      await core.stopTyping(session, valid(parse.stopTyping(payload)));
      return {};
    },
  };

  /** Every incoming event, known or not (Socket.IO passes the acknowledgement function last). */
  function dispatch(socket: ChatSocket, event: unknown, args: unknown[]): void {
    const session = socket.data;
    const ack = typeof args.at(-1) === "function" ? (args.pop() as Ack) : undefined;
    if (!isClientEvent(event)) {
      d.metrics.eventsReceived.inc({ event: "unknown" });
      if (ack) fail(session, invalid("unknown event"), "unknown", ack);
      return;
    }
    d.metrics.eventsReceived.inc({ event });
    if (d.isDraining()) return fail(session, new AppError(ErrorCode.UNAVAILABLE, "node is draining, retry after reconnecting"), event, ack);
    if (tokenExpired(socket)) {
      fail(session, new AppError(ErrorCode.UNAUTHORIZED, "token expired, reconnect with a fresh one"), event, ack);
      // After the answer (Engine.IO sends what it holds before closing); the client reconnects.
      socket.conn.close();
      return;
    }
    const t0 = event === ClientEvent.sendMessage ? performance.now() : 0;
    d.inflight.count++;
    handlers[event](session, args[0])
      .then((answer) => {
        ack?.({ ok: true, ...answer });
        if (t0) d.metrics.sendAckSeconds.observe((performance.now() - t0) / 1000);
      })
      .catch((err: unknown) => fail(session, err, event, ack))
      .finally(() => {
        if (--d.inflight.count === 0) d.inflight.onIdle();
      });
  }

  // Socket.IO calls listeners with `this` = the socket.
  function onEvent(this: ChatSocket, event: unknown, ...args: unknown[]): void {
    dispatch(this, event, args);
  }
  function onDisconnecting(this: ChatSocket): void {
    core.disconnect(this.data);
  }
  return (socket) => {
    socket.onAny(onEvent);
    socket.on("disconnecting", onDisconnecting);
  };
}
