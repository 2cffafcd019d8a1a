/** Types of `events.js` for the tests (k6 reads the plain JavaScript). */
export declare const ClientEvent: Readonly<{
  joinConversation: "joinConversation";
  leaveConversation: "leaveConversation";
  sendMessage: "sendMessage";
  typing: "typing";
  stopTyping: "stopTyping";
}>;
export declare const ServerEvent: Readonly<{ newMessage: "newMessage"; typing: "typing"; presence: "presence" }>;
