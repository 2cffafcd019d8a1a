/**
 * The contract's Socket.IO event names, for the k6 scripts (k6 cannot import the TypeScript
 * protocol package). A test (load-tests/runner/test/k6-protocol.test.ts) fails when these drift
 * from `@chat/protocol`'s ClientEvent / ServerEvent, or when a script spells an event name itself.
 */
export const ClientEvent = Object.freeze({
  joinConversation: "joinConversation",
  leaveConversation: "leaveConversation",
  sendMessage: "sendMessage",
  typing: "typing",
  stopTyping: "stopTyping",
});

export const ServerEvent = Object.freeze({
  newMessage: "newMessage",
  typing: "typing",
  presence: "presence",
});
