import type { ErrorBody } from "./errors.ts";
import type { MessageData } from "./message.ts";
import type {
  JoinConversationPayload,
  LeaveConversationPayload,
  SendMessagePayload,
  StopTypingPayload,
  TypingPayload,
} from "./schemas.ts";
import type { PresenceEvent, TypingEvent } from "./message.ts";

/** A failed acknowledgement. */
export interface AckError {
  ok: false;
  error: ErrorBody;
}
/** An acknowledgement: `{ ok: true, ...T }` or `{ ok: false, error }`. */
export type Ack<T extends object = object> = ({ ok: true } & T) | AckError;

export type JoinAck = Ack<{ conversationId: string; lastSeq: number; missed?: MessageData[]; hasMore?: boolean }>;
export type SendAck = Ack<{ message: MessageData; duplicate?: boolean }>;
export type PlainAck = Ack;

/** Typed event maps for socket.io's generics, from the client's point of view. */
export interface ClientToServerEvents {
  joinConversation(payload: JoinConversationPayload, ack?: (a: JoinAck) => void): void;
  leaveConversation(payload: LeaveConversationPayload, ack?: (a: PlainAck) => void): void;
  sendMessage(payload: SendMessagePayload, ack?: (a: SendAck) => void): void;
  typing(payload: TypingPayload, ack?: (a: PlainAck) => void): void;
  stopTyping(payload: StopTypingPayload, ack?: (a: PlainAck) => void): void;
}

export interface ServerToClientEvents {
  newMessage(message: MessageData): void;
  typing(event: TypingEvent): void;
  presence(event: PresenceEvent): void;
}
