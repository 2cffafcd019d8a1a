/**
 * `@chat/react`: React bindings of `@chat/client`. Wrap the app in `<ChatProvider client={...}>`,
 * then read the chat with hooks. See docs/sdk.md.
 */
export { ChatProvider, useChatClient, type ChatProviderProps } from "./context.ts";
export { useConnection, useConversation, usePresence, useTyping, type ConversationView } from "./hooks.ts";
