import { createContext, createElement, useContext, type ReactNode } from "react";
import type { ChatClient } from "@chat/client";

const ChatContext = createContext<ChatClient | null>(null);

export interface ChatProviderProps {
  /** The app's client (`createChatClient`), created once, e.g. in a module or a `useState` initialiser. */
  client: ChatClient;
  children?: ReactNode;
}

/** Makes a ChatClient available to every hook below it. */
export function ChatProvider({ client, children }: ChatProviderProps): ReactNode {
  return createElement(ChatContext.Provider, { value: client }, children);
}

/** The provider's client; throws outside a ChatProvider. */
export function useChatClient(): ChatClient {
  const client = useContext(ChatContext);
  if (!client) throw new Error("useChatClient: no <ChatProvider client={...}> above this component");
  return client;
}
