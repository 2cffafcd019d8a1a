/**
 * The contract's client events on one socket. Each reads top to bottom: count, refuse while
 * draining, validate, check the claimed identity, rate-limit, use case, broadcast, acknowledge.
 * Every failure becomes an error acknowledgement; nothing thrown here reaches Socket.IO.
 */
import type { Socket } from "socket.io";
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
  type MessageData,
} from "@chat/protocol";
import { AppError, forbidden, invalid, toAck, toAppError, valid } from "../errors.ts";
import type { Metrics } from "../metrics.ts";
import type { RateLimiter } from "../rate-limit.ts";
import type { ChatService } from "../use-cases/chat-service.ts";
import type { PresenceTracker } from "../cluster/types.ts";
import type { Broadcaster } from "./broadcaster.ts";
import type { TypingTracker } from "./typing.ts";
import { tokenExpired } from "./token-expiry.ts";
import { conversationOfRoom, roomOf } from "./rooms.ts";
import { corkUntilTurnEnds } from "./cork.ts";

const validators = {
  joinConversation: compileValidator(JoinConversationPayload),
  leaveConversation: compileValidator(LeaveConversationPayload),
  sendMessage: compileValidator(SendMessagePayload),
  typing: compileValidator(TypingPayload),
  stopTyping: compileValidator(StopTypingPayload),
};

export interface HandlerDeps {
  service: ChatService;
  broadcaster: Broadcaster;
  typing: TypingTracker;
  /** Broadcasts a stored message and ends its sender's typing from before `receivedAt` (the send's `performance.now()`). */
  announce(message: MessageData, receivedAt: number, sender?: Socket): void;
  presence: PresenceTracker;
  limiter: RateLimiter;
  metrics: Metrics;
  logger: Logger;
  /** In-flight events, so draining can wait for them. */
  inflight: { count: number; onIdle(): void };
  isDraining(): boolean;
}

type Ack = (answer: object) => void;
type Handler = (socket: Socket, userId: string, payload: unknown) => Promise<object>;

/** What the node keeps on each socket (`socket.data`), beyond the authenticated user. */
interface SocketState {
  userId: string;
  /** When the handshake's token expires (ms since the epoch), if it does. */
  expiresAt?: number;
  /** Conversations this socket counts as present in; made on the first join. */
  joined?: Set<string>;
  log?: Logger;
}
const stateOf = (socket: Socket) => socket.data as SocketState;

/**
 * Builds the event handling once per server and returns `attach(socket)`. The listeners are shared
 * by every socket (Socket.IO calls them with `this` = the socket, per-socket state lives in
 * `socket.data`), so an idle socket costs no closures of ours: memory per socket is what scales.
 */
export function createHandlers(d: HandlerDeps): (socket: Socket) => void {
  // Idle sockets are the common case: the child logger is made on first use only.
  const log = (socket: Socket) => {
    const st = stateOf(socket);
    return (st.log ??= d.logger.child({ socketId: socket.id, userId: st.userId }));
  };

  const fail = (socket: Socket, err: unknown, event: string, ack: Ack | undefined) => {
    const e = toAppError(err);
    d.metrics.errors.inc({ code: e.code });
    if (e.code === ErrorCode.INTERNAL || e.code === ErrorCode.UNAVAILABLE) log(socket).warn({ err: e.cause ?? e, event }, "event failed");
    else if (d.logger.isLevelEnabled("debug")) log(socket).debug({ code: e.code, event, reason: e.message }, "event refused");
    ack?.(toAck(e));
  };

  async function leave(socket: Socket, userId: string, conversationId: string): Promise<void> {
    await socket.leave(roomOf(conversationId));
    d.typing.endBySocket(conversationId, userId, socket.id);
    if (stateOf(socket).joined?.delete(conversationId) && (await d.presence.leave(conversationId, userId, socket.id))) {
      d.broadcaster.presence(conversationId, userId, false);
    }
  }

  const handlers: Record<ClientEvent, Handler> = {
    async joinConversation(socket, userId, payload) {
      const { conversationId, sinceSeq } = valid(validators.joinConversation(payload));
      await d.service.requireMember(userId, conversationId);
      // Join before reading the catch-up, so no message falls between the two (a message in both
      // `missed` and a live `newMessage` is deduplicated by the client on `id`).
      const room = roomOf(conversationId);
      if (!socket.connected) throw new AppError(ErrorCode.UNAVAILABLE, "socket closed");
      await socket.join(room);
      const st = stateOf(socket);
      if (!st.joined?.has(conversationId)) {
        (st.joined ??= new Set()).add(conversationId);
        if (await d.presence.join(conversationId, userId, socket.id)) d.broadcaster.presence(conversationId, userId, true);
      }
      return d.service.catchUp(userId, conversationId, sinceSeq);
    },

    async leaveConversation(socket, userId, payload) {
      const { conversationId } = valid(validators.leaveConversation(payload));
      await d.service.requireMember(userId, conversationId);
      await leave(socket, userId, conversationId);
      return {};
    },

    async sendMessage(socket, userId, payload) {
      const receivedAt = performance.now();
      d.limiter.check("send", userId);
      const p = valid(validators.sendMessage(payload));
      if (p.senderId !== undefined && p.senderId !== userId) throw forbidden("senderId is not the authenticated user");
      const { message, duplicate } = await d.service.sendMessage(userId, p);
      // The sender's own newMessage and this acknowledgement leave in one system call.
      corkUntilTurnEnds(socket);
      if (!duplicate) {
        d.metrics.messagesStored.inc();
        d.announce(message, receivedAt, socket);
      } else d.metrics.messagesDuplicate.inc();
      return duplicate ? { message, duplicate } : { message };
    },

    async typing(socket, userId, payload) {
      d.limiter.check("typing", userId);
      const p = valid(validators.typing(payload));
      if (p.userId !== undefined && p.userId !== userId) throw forbidden("userId is not the authenticated user");
      await d.service.requireMember(userId, p.conversationId);
      d.typing.start(p.conversationId, userId, socket.id);
      return {};
    },

    async stopTyping(_socket, userId, payload) {
      const p = valid(validators.stopTyping(payload));
      await d.service.requireMember(userId, p.conversationId);
      d.typing.end(p.conversationId, userId);
      return {};
    },
  };

  /** Every incoming event, known or not (Socket.IO passes the acknowledgement function last). */
  function dispatch(socket: Socket, event: unknown, args: unknown[]): void {
    const ack = typeof args.at(-1) === "function" ? (args.pop() as Ack) : undefined;
    if (!isClientEvent(event)) {
      d.metrics.eventsReceived.inc({ event: "unknown" });
      if (ack) fail(socket, invalid("unknown event"), "unknown", ack);
      return;
    }
    d.metrics.eventsReceived.inc({ event });
    if (d.isDraining()) return fail(socket, new AppError(ErrorCode.UNAVAILABLE, "node is draining, retry after reconnecting"), event, ack);
    if (tokenExpired(socket)) {
      fail(socket, new AppError(ErrorCode.UNAUTHORIZED, "token expired, reconnect with a fresh one"), event, ack);
      // After the answer (Engine.IO sends what it holds before closing); the client reconnects.
      socket.conn.close();
      return;
    }
    const t0 = event === ClientEvent.sendMessage ? performance.now() : 0;
    d.inflight.count++;
    handlers[event](socket, stateOf(socket).userId, args[0])
      .then((answer) => {
        ack?.({ ok: true, ...answer });
        if (t0) d.metrics.sendAckSeconds.observe((performance.now() - t0) / 1000);
      })
      .catch((err: unknown) => fail(socket, err, event, ack))
      .finally(() => {
        if (--d.inflight.count === 0) d.inflight.onIdle();
      });
  }

  function disconnecting(socket: Socket): void {
    const { userId, joined } = stateOf(socket);
    for (const room of socket.rooms) {
      const conversationId = conversationOfRoom(room);
      if (conversationId) d.typing.endBySocket(conversationId, userId, socket.id);
    }
    if (!joined) return;
    for (const conversationId of [...joined]) {
      joined.delete(conversationId);
      d.presence
        .leave(conversationId, userId, socket.id)
        .then((offline) => offline && d.broadcaster.presence(conversationId, userId, false))
        .catch((err: unknown) => log(socket).warn({ err }, "presence leave failed"));
    }
  }

  // Socket.IO calls listeners with `this` = the socket.
  function onEvent(this: Socket, event: unknown, ...args: unknown[]): void {
    dispatch(this, event, args);
  }
  function onDisconnecting(this: Socket): void {
    disconnecting(this);
  }
  return (socket) => {
    socket.onAny(onEvent);
    socket.on("disconnecting", onDisconnecting);
  };
}
