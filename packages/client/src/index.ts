/**
 * `@chat/client`: the typed SDK of the chat cluster, over `socket.io-client` and `fetch`. Used by the
 * web page, the tests, the load runner and `@chat/react`. See docs/sdk.md and docs/web.md.
 */
export { ChatClient, createChatClient } from "./chat-client.ts";
export type {
  ChatClientEvents,
  ChatClientOptions,
  ChatSocket,
  ConnectionState,
  JoinResult,
  MessageSource,
  MessagesEvent,
  OutboxEvent,
  SendOptions,
  TrimmedEvent,
} from "./chat-client.ts";
export { ChatError, type ChatErrorCode } from "./errors.ts";
export { createRestApi, fetchDevToken, type FetchLike, type HistoryQuery, type PostedMessage, type RestApi, type RestOptions } from "./rest.ts";
export { Timeline } from "./timeline.ts";
export { TypingThrottle, type TypingSink } from "./typing.ts";
export { newClientMessageId, subjectOf } from "./ids.ts";
export type { ServerLimits } from "@chat/protocol";
export {
  IndexedDbOutboxStorage,
  MemoryOutboxStorage,
  defaultOutboxStorage,
  type OutboxEntry,
  type OutboxState,
  type OutboxStorage,
} from "./outbox.ts";
export type { Conversation, ErrorCode, MessageData, MessagePage, PresenceEvent, TypingEvent } from "@chat/protocol";
