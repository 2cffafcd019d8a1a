/**
 * Socket.IO event names of the contract (CONTRACT.md §4). The seed's names are kept verbatim.
 */
export const ClientEvent = {
  joinConversation: "joinConversation",
  leaveConversation: "leaveConversation",
  sendMessage: "sendMessage",
  typing: "typing",
  stopTyping: "stopTyping",
} as const;

/** A client-to-server event name. */
export type ClientEvent = (typeof ClientEvent)[keyof typeof ClientEvent];

export const ServerEvent = {
  newMessage: "newMessage",
  typing: "typing",
  presence: "presence",
} as const;

/** A server-to-client event name. */
export type ServerEvent = (typeof ServerEvent)[keyof typeof ServerEvent];

/** Every client event name, for closed-set metric labels; anything else counts as `unknown`. */
export const CLIENT_EVENTS: readonly ClientEvent[] = Object.freeze(Object.values(ClientEvent));

/** True when `name` is one of the contract's client events. */
export function isClientEvent(name: unknown): name is ClientEvent {
  return typeof name === "string" && (CLIENT_EVENTS as readonly string[]).includes(name);
}

/** Message text of a `connect_error` refused at the handshake. */
export const ConnectError = {
  UNAUTHORIZED: "UNAUTHORIZED",
  UNAVAILABLE: "UNAVAILABLE",
  /** Too many handshakes from this user (RATE_HANDSHAKE_*), or MAX_CONNECTIONS_PER_USER reached. */
  RATE_LIMITED: "RATE_LIMITED",
} as const;
