/** The SDK tests' common moves on top of the test-kit. */
import { eventually, mintToken } from "@chat/test-kit";
import { createChatClient, type ChatClient, type ChatClientOptions, type ConnectionState, type MessagesEvent } from "../src/index.ts";

const clients = new Set<ChatClient>();

/** A client for `userId` (token minted with the test secret), websocket only, quick reconnection. */
export async function newClient(url: string, userId: string, extra: Partial<ChatClientOptions> = {}): Promise<ChatClient> {
  const client = createChatClient({
    url,
    token: await mintToken(userId),
    ...extra,
    socketOptions: { transports: ["websocket"], reconnectionDelay: 100, reconnectionDelayMax: 300, ...extra.socketOptions },
  });
  clients.add(client);
  return client;
}

export function closeClients(): void {
  for (const c of clients) c.close();
  clients.clear();
}

export function waitForState(client: ChatClient, state: ConnectionState, timeoutMs = 10_000): Promise<boolean> {
  return eventually(() => client.state === state, timeoutMs, `state ${state} (now ${client.state})`);
}

/** Records every state change and every announced message of a client. */
export function record(client: ChatClient): { states: ConnectionState[]; announced: MessagesEvent[]; ids(): string[] } {
  const states: ConnectionState[] = [client.state];
  const announced: MessagesEvent[] = [];
  client.on("state", (s) => states.push(s));
  client.on("messages", (e) => announced.push(e));
  return { states, announced, ids: () => announced.flatMap((e) => e.messages.map((m) => m.id)) };
}

/** Asserts-friendly view: the seqs of a message list. */
export const seqs = (messages: { seq: number }[]) => messages.map((m) => m.seq);

export const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
