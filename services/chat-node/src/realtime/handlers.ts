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
  /** Broadcasts a stored message and ends its sender's typing. */
  announce(message: MessageData, sender?: Socket): void;
  presence: PresenceTracker;
  limiter: RateLimiter;
  metrics: Metrics;
  logger: Logger;
  /** In-flight events, so draining can wait for them. */
  inflight: { count: number; onIdle(): void };
  isDraining(): boolean;
}

type Ack = (answer: object) => void;
type Handler = (payload: unknown) => Promise<object>;

export function registerHandlers(socket: Socket, d: HandlerDeps): void {
  const userId = socket.data.userId as string;
  // Idle sockets are the common case: the child logger is made on first use only.
  let childLog: Logger | undefined;
  const log = () => (childLog ??= d.logger.child({ socketId: socket.id, userId }));
  const joined = new Set<string>();

  const fail = (err: unknown, event: string, ack: Ack | undefined) => {
    const e = toAppError(err);
    d.metrics.errors.inc({ code: e.code });
    if (e.code === ErrorCode.INTERNAL || e.code === ErrorCode.UNAVAILABLE) log().warn({ err: e.cause ?? e, event }, "event failed");
    else if (d.logger.isLevelEnabled("debug")) log().debug({ code: e.code, event, reason: e.message }, "event refused");
    ack?.(toAck(e));
  };

  const on = (event: ClientEvent, handler: Handler) => {
    socket.on(event, (...args: unknown[]) => {
      const ack = typeof args.at(-1) === "function" ? (args.pop() as Ack) : undefined;
      if (d.isDraining()) return fail(new AppError(ErrorCode.UNAVAILABLE, "node is draining, retry after reconnecting"), event, ack);
      const t0 = event === ClientEvent.sendMessage ? performance.now() : 0;
      d.inflight.count++;
      handler(args[0])
        .then((answer) => {
          ack?.({ ok: true, ...answer });
          if (t0) d.metrics.sendAckSeconds.observe((performance.now() - t0) / 1000);
        })
        .catch((err: unknown) => fail(err, event, ack))
        .finally(() => {
          if (--d.inflight.count === 0) d.inflight.onIdle();
        });
    });
  };

  socket.onAny((event: unknown, ...args: unknown[]) => {
    if (isClientEvent(event)) {
      d.metrics.eventsReceived.inc({ event });
      return;
    }
    d.metrics.eventsReceived.inc({ event: "unknown" });
    const ack = args.at(-1);
    if (typeof ack === "function") fail(invalid("unknown event"), "unknown", ack as Ack);
  });

  on(ClientEvent.joinConversation, async (payload) => {
    const { conversationId, sinceSeq } = valid(validators.joinConversation(payload));
    await d.service.requireMember(userId, conversationId);
    // Join before reading the catch-up, so no message falls between the two (a message in both
    // `missed` and a live `newMessage` is deduplicated by the client on `id`).
    const room = roomOf(conversationId);
    if (!socket.connected) throw new AppError(ErrorCode.UNAVAILABLE, "socket closed");
    await socket.join(room);
    if (!joined.has(conversationId)) {
      joined.add(conversationId);
      if (await d.presence.join(conversationId, userId, socket.id)) d.broadcaster.presence(conversationId, userId, true);
    }
    return d.service.catchUp(userId, conversationId, sinceSeq);
  });

  on(ClientEvent.leaveConversation, async (payload) => {
    const { conversationId } = valid(validators.leaveConversation(payload));
    await d.service.requireMember(userId, conversationId);
    await leave(conversationId);
    return {};
  });

  on(ClientEvent.sendMessage, async (payload) => {
    d.limiter.check("send", userId);
    const p = valid(validators.sendMessage(payload));
    if (p.senderId !== undefined && p.senderId !== userId) throw forbidden("senderId is not the authenticated user");
    const { message, duplicate } = await d.service.sendMessage(userId, p);
    // The sender's own newMessage and this acknowledgement leave in one system call.
    corkUntilTurnEnds(socket);
    if (!duplicate) {
      d.metrics.messagesStored.inc();
      d.announce(message, socket);
    } else d.metrics.messagesDuplicate.inc();
    return duplicate ? { message, duplicate } : { message };
  });

  on(ClientEvent.typing, async (payload) => {
    d.limiter.check("typing", userId);
    const p = valid(validators.typing(payload));
    if (p.userId !== undefined && p.userId !== userId) throw forbidden("userId is not the authenticated user");
    await d.service.requireMember(userId, p.conversationId);
    d.typing.start(p.conversationId, userId, socket.id);
    return {};
  });

  on(ClientEvent.stopTyping, async (payload) => {
    const p = valid(validators.stopTyping(payload));
    await d.service.requireMember(userId, p.conversationId);
    d.typing.end(p.conversationId, userId);
    return {};
  });

  async function leave(conversationId: string): Promise<void> {
    await socket.leave(roomOf(conversationId));
    d.typing.endBySocket(conversationId, userId, socket.id);
    if (joined.delete(conversationId) && (await d.presence.leave(conversationId, userId, socket.id))) {
      d.broadcaster.presence(conversationId, userId, false);
    }
  }

  socket.on("disconnecting", () => {
    for (const room of socket.rooms) {
      const conversationId = conversationOfRoom(room);
      if (conversationId) d.typing.endBySocket(conversationId, userId, socket.id);
    }
    for (const conversationId of [...joined]) {
      joined.delete(conversationId);
      d.presence
        .leave(conversationId, userId, socket.id)
        .then((offline) => offline && d.broadcaster.presence(conversationId, userId, false))
        .catch((err: unknown) => log().warn({ err }, "presence leave failed"));
    }
  });
}
