import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import type { ChatError, ConnectionState, MessageData, OutboxEntry } from "@chat/client";
import { useChatClient } from "./context.ts";

/** The connection state, re-rendering on every change. */
export function useConnection(): { state: ConnectionState; reconnect: () => void } {
  const client = useChatClient();
  const state = useSyncExternalStore(
    (notify) => client.on("state", notify),
    () => client.state,
    () => client.state,
  );
  return { state, reconnect: useCallback(() => client.reconnect(), [client]) };
}

export interface ConversationView {
  /** Stored messages, ascending by `seq`, each once (by `id`). */
  messages: MessageData[];
  /** Sends not stored yet (`pending`) or refused (`failed`), oldest first: show them after `messages`. */
  outbox: OutboxEntry[];
  /** True until the newest page is loaded. */
  loading: boolean;
  /** The last failure of joining or paging; sends report theirs through `outbox` and their promise. */
  error: ChatError | undefined;
  hasOlder: boolean;
  /** Pages back by `before=`. */
  loadOlder: () => Promise<void>;
  send: (text: string) => Promise<MessageData>;
  retry: (clientMessageId: string) => Promise<MessageData>;
  discard: (clientMessageId: string) => Promise<void>;
}

/**
 * One conversation, kept whole by the client: joined on mount (history, room, catch-up after every
 * reconnection by `seq`), messages deduped by `id` in `seq` order, older pages on demand, and the
 * outbox of this conversation. The conversation stays joined after unmount (another component may
 * show it); call `client.leave(id)` to let it go.
 */
export function useConversation(conversationId: string): ConversationView {
  const client = useChatClient();
  const [version, setVersion] = useState(0);
  const [loading, setLoading] = useState(() => !client.isLoaded(conversationId));
  const [error, setError] = useState<ChatError | undefined>(undefined);
  const bump = useCallback(() => setVersion((v) => v + 1), []);

  useEffect(() => {
    let live = true;
    const mine = (e: { conversationId: string }) => e.conversationId === conversationId && bump();
    const offs = [client.on("messages", mine), client.on("trimmed", mine), client.on("outbox", mine)];
    // Read again now: the outbox restored from storage may have arrived between render and here.
    bump();
    setLoading(!client.isLoaded(conversationId));
    client.join(conversationId).then(
      () => live && (setLoading(false), setError(undefined), bump()),
      (err: ChatError) => live && (setError(err), setLoading(!client.isLoaded(conversationId))),
    );
    return () => {
      live = false;
      for (const off of offs) off();
    };
  }, [client, conversationId, bump]);

  // Read from the client again at every version: `version` is the dependency that says when.
  const messages = useMemo(() => client.messages(conversationId), [client, conversationId, version]);
  const outbox = useMemo(
    () => client.outbox(conversationId).filter((e) => !messages.some((m) => m.clientMessageId === e.clientMessageId)),
    [client, conversationId, messages],
  );
  const loadOlder = useCallback(async () => {
    try {
      await client.loadOlder(conversationId);
    } catch (err) {
      setError(err as ChatError);
    }
    bump();
  }, [client, conversationId, bump]);
  const send = useCallback((text: string) => client.send(conversationId, text), [client, conversationId]);
  const retry = useCallback((id: string) => client.retry(id), [client]);
  const discard = useCallback((id: string) => client.discard(id).then(bump), [client, bump]);
  return { messages, outbox, loading, error, hasOlder: client.hasOlder(conversationId), loadOlder, send, retry, discard };
}

/**
 * Who else is typing in a conversation, and the input handler that tells the others (throttled by
 * the client: one `typing` per `typingIntervalMs`, `stopTyping` when the input empties or a message
 * is sent). A typer is cleared by the server's `isTyping: false` (its timeout, a send, a leave), by
 * a message from them, and by our own disconnection.
 */
export function useTyping(conversationId: string): { typing: string[]; onInput: (value: string) => void; stop: () => void } {
  const client = useChatClient();
  const [typing, setTyping] = useState<string[]>([]);
  useEffect(() => {
    setTyping([]);
    const without = (userId: string) => setTyping((list) => (list.includes(userId) ? list.filter((u) => u !== userId) : list));
    const offs = [
      client.on("typing", (e) => {
        if (e.conversationId !== conversationId || e.userId === client.userId) return;
        if (e.isTyping) setTyping((list) => (list.includes(e.userId) ? list : [...list, e.userId]));
        else without(e.userId);
      }),
      client.on("messages", (e) => {
        if (e.conversationId === conversationId) for (const m of e.messages) without(m.senderId);
      }),
      client.on("state", (s) => s !== "connected" && setTyping([])),
    ];
    return () => {
      for (const off of offs) off();
    };
  }, [client, conversationId]);
  const onInput = useCallback((value: string) => client.inputChanged(conversationId, value), [client, conversationId]);
  const stop = useCallback(() => client.stopTyping(conversationId), [client, conversationId]);
  return { typing, onInput, stop };
}

/**
 * Who is online in a conversation: read by REST on mount and after every reconnection, then kept
 * by `presence` events.
 */
export function usePresence(conversationId: string): { online: string[] } {
  const client = useChatClient();
  const [online, setOnline] = useState<string[]>([]);
  const generation = useRef(0);
  useEffect(() => {
    const gen = ++generation.current;
    const load = () =>
      client.rest.presence(conversationId).then(
        (r) => gen === generation.current && setOnline(r.online),
        () => undefined,
      );
    void load();
    const offs = [
      client.on("presence", (e) => {
        if (e.conversationId !== conversationId) return;
        setOnline((list) => (e.online ? (list.includes(e.userId) ? list : [...list, e.userId]) : list.filter((u) => u !== e.userId)));
      }),
      client.on("state", (s) => s === "connected" && void load()),
    ];
    return () => {
      generation.current++;
      for (const off of offs) off();
    };
  }, [client, conversationId]);
  return { online };
}
