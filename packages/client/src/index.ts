/**
 * `@chat/client`: the typed SDK of the chat cluster, over `socket.io-client` and `fetch`. Used by the
 * web page, the tests and the load runner. See docs/web.md for its guarantees.
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
  SendOptions,
  TrimmedEvent,
} from "./chat-client.ts";
export { ChatError, type ChatErrorCode } from "./errors.ts";
export { createRestApi, fetchDevToken, type FetchLike, type HistoryQuery, type PostedMessage, type RestApi, type RestOptions } from "./rest.ts";
export { Timeline } from "./timeline.ts";
export { TypingThrottle, type TypingSink } from "./typing.ts";
export { newClientMessageId, subjectOf } from "./ids.ts";
export type { ServerLimits } from "@chat/protocol";
