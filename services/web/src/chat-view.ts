/**
 * The signed-in page: conversation list and creation, the open conversation (history, older pages
 * on scroll, live messages, typing, presence), the send box and the connection status. All state
 * that must survive reconnection (seq, dedupe, retries) lives in the SDK; this file only shows it.
 */
import { ChatError, createChatClient, newClientMessageId, type ConnectionState } from "@chat/client";
import type { Conversation } from "@chat/protocol";
import { byTestId, el } from "./dom.ts";
import { MessageList } from "./message-list.ts";
import { PresenceView } from "./presence-view.ts";
import { TypingIndicator } from "./typing-indicator.ts";

const LIST_REFRESH_MS = 5000;
/** Bounds the older pages loaded at once to fill a tall window. */
const MAX_FILL_PAGES = 5;

export interface ChatViewOptions {
  token: string;
  userId: string;
  onSignOut(): void;
  showError(message: string): void;
}

/** Starts the chat for a signed-in user; returns the function that stops it. */
export function startChatView(opts: ChatViewOptions): () => void {
  const client = createChatClient({ url: location.origin, token: opts.token });
  const me = client.userId ?? opts.userId;
  const ui = {
    status: byTestId("connection-status"),
    view: byTestId("chat-view"),
    list: byTestId<HTMLUListElement>("conversation-list"),
    newForm: byTestId<HTMLFormElement>("new-conversation-form"),
    conversation: byTestId("conversation-view"),
    empty: byTestId("no-conversation"),
    title: byTestId("conversation-title"),
    messages: byTestId("message-list"),
    input: byTestId<HTMLTextAreaElement>("message-input"),
    sendForm: byTestId<HTMLFormElement>("send-form"),
  };
  const messageList = new MessageList(ui.messages, byTestId("history-status"), me);
  const typing = new TypingIndicator(byTestId("typing-indicator"), byTestId("typing-text"));
  const presence = new PresenceView(byTestId("presence"));

  let conversations: Conversation[] = [];
  let openId: string | undefined;
  let loadingOlder = false;
  /** Per conversation, the highest seq the user has had on screen: the unread badge counts beyond it. */
  const seenSeq = new Map<string, number>();
  const cleanups: (() => void)[] = [];
  const listen = <K extends keyof HTMLElementEventMap>(target: HTMLElement | Window | Document, type: K, fn: (e: HTMLElementEventMap[K]) => void) => {
    target.addEventListener(type, fn as EventListener);
    cleanups.push(() => target.removeEventListener(type, fn as EventListener));
  };
  const report = (err: unknown) => opts.showError(err instanceof ChatError ? `${err.code}: ${err.message}` : String(err));

  function showState(state: ConnectionState): void {
    ui.status.dataset.state = state;
    const label = ui.status.querySelector(".status-label");
    if (label) label.textContent = state;
  }

  function titleOf(c: Conversation): string {
    return c.title || c.members.filter((m) => m !== me).join(", ") || "Just me";
  }

  function renderList(): void {
    ui.list.replaceChildren(
      ...conversations.map((c) => {
        if (!seenSeq.has(c.id)) seenSeq.set(c.id, c.lastSeq);
        const unread = c.id === openId ? 0 : Math.max(0, c.lastSeq - (seenSeq.get(c.id) ?? 0));
        const item = el(
          "li",
          { "data-testid": "conversation-item", "data-conversation-id": c.id, "data-active": String(c.id === openId), tabindex: "0" },
          el("span", { class: "conversation-name" }, titleOf(c)),
          unread > 0 ? el("span", { class: "badge", "data-testid": "unread-badge" }, String(unread)) : "",
        );
        item.addEventListener("click", () => void openConversation(c.id));
        item.addEventListener("keydown", (e) => {
          if (e.key === "Enter") void openConversation(c.id);
        });
        return item;
      }),
    );
  }

  async function refreshList(): Promise<void> {
    try {
      conversations = await client.rest.listConversations();
      renderList();
    } catch (err) {
      if (err instanceof ChatError && err.code === "UNAUTHORIZED") opts.onSignOut();
    }
  }

  async function refreshPresence(id: string): Promise<void> {
    const conv = conversations.find((c) => c.id === id);
    try {
      const { online } = await client.rest.presence(id);
      if (openId === id) presence.reset(conv?.members ?? online, online);
    } catch {
      if (openId === id) presence.reset(conv?.members ?? [], []);
    }
  }

  async function openConversation(id: string): Promise<void> {
    if (id === openId) return;
    const previous = openId;
    openId = id;
    location.hash = `#/c/${encodeURIComponent(id)}`;
    if (previous) void client.leave(previous);
    typing.clear();
    messageList.clear();
    ui.empty.hidden = true;
    ui.conversation.hidden = false;
    const conv = conversations.find((c) => c.id === id);
    ui.title.textContent = conv ? titleOf(conv) : id;
    ui.input.value = "";
    renderList();
    try {
      const joined = await client.join(id);
      if (openId !== id) return;
      messageList.setHistory(joined.hasOlder, false);
      void refreshPresence(id);
      await fillViewport(id);
      ui.input.focus();
    } catch (err) {
      if (openId === id) report(err);
    }
  }

  async function loadOlder(id: string): Promise<void> {
    if (loadingOlder || !client.hasOlder(id)) return;
    loadingOlder = true;
    messageList.setHistory(true, true);
    try {
      await client.loadOlder(id);
    } catch (err) {
      report(err);
    } finally {
      loadingOlder = false;
      if (openId === id) messageList.setHistory(client.hasOlder(id), false);
    }
  }

  /** Loads older pages while the list is too short to scroll (no scroll, no way to ask for more). */
  async function fillViewport(id: string): Promise<void> {
    for (let i = 0; i < MAX_FILL_PAGES && openId === id && client.hasOlder(id) && messageList.isUnderfilled(); i++) await loadOlder(id);
  }

  function send(id: string, text: string, clientMessageId: string): void {
    client.send(id, text, { clientMessageId }).then(
      // Normally gone already, replaced by the stored message; not when that message is older than what the client holds.
      () => messageList.removePending(clientMessageId),
      (err: unknown) => {
        const reason = err instanceof ChatError ? err.code : "error";
        messageList.markFailed(clientMessageId, reason, () => send(id, text, clientMessageId));
      },
    );
  }

  client.on("state", (state) => {
    showState(state);
    if (state !== "connected") typing.clear();
    else if (openId) void refreshPresence(openId);
  });
  client.on("messages", ({ conversationId, messages, source }) => {
    const last = messages.at(-1);
    if (last && last.seq > (seenSeq.get(conversationId) ?? 0)) seenSeq.set(conversationId, last.seq);
    if (conversationId !== openId) return;
    for (const m of messages) if (source === "live") typing.set(m.senderId, false);
    messageList.add(messages, source);
    // At the newest messages again: the client may drop what the reader paged back to (maxMessages).
    if (source !== "older" && source !== "history" && messageList.isNearBottom()) client.trim(conversationId);
  });
  client.on("trimmed", ({ conversationId, messages }) => {
    if (conversationId !== openId) return;
    messageList.remove(messages);
    messageList.setHistory(true, loadingOlder);
  });
  client.on("typing", (e) => {
    if (e.conversationId === openId && e.userId !== me) typing.set(e.userId, e.isTyping);
  });
  client.on("presence", (e) => {
    if (e.conversationId === openId) presence.set(e.userId, e.online);
  });
  client.on("error", (err) => {
    report(err);
    if (err.code === "UNAUTHORIZED") opts.onSignOut();
  });

  listen(ui.messages, "scroll", () => {
    if (openId && messageList.isNearTop()) void loadOlder(openId);
  });
  listen(ui.input, "input", () => {
    if (openId) client.inputChanged(openId, ui.input.value);
  });
  listen(ui.input, "keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      ui.sendForm.requestSubmit();
    }
  });
  listen(ui.sendForm, "submit", (e) => {
    e.preventDefault();
    const text = ui.input.value.trim();
    if (!openId || text === "") return;
    ui.input.value = "";
    const clientMessageId = newClientMessageId();
    messageList.addPending(clientMessageId, text);
    send(openId, text, clientMessageId);
  });
  listen(ui.newForm, "submit", (e) => {
    e.preventDefault();
    const data = new FormData(ui.newForm);
    const members = String(data.get("members") ?? "")
      .split(/[\s,]+/)
      .filter(Boolean);
    const title = String(data.get("title") ?? "").trim();
    if (members.length === 0) return;
    client.rest
      .createConversation(title ? { members, title } : { members })
      .then(async (conv) => {
        ui.newForm.reset();
        await refreshList();
        await openConversation(conv.id);
      })
      .catch(report);
  });
  listen(window, "focus", () => void refreshList());
  const timer = setInterval(() => {
    if (document.visibilityState === "visible") void refreshList();
  }, LIST_REFRESH_MS);

  showState(client.state);
  ui.view.hidden = false;
  const fromHash = /^#\/c\/(.+)$/.exec(location.hash)?.[1];
  void refreshList().then(() => {
    if (fromHash) void openConversation(decodeURIComponent(fromHash));
  });

  return () => {
    clearInterval(timer);
    for (const c of cleanups) c();
    client.close();
    ui.view.hidden = true;
    ui.conversation.hidden = true;
    ui.empty.hidden = false;
    ui.list.replaceChildren();
    messageList.clear();
    typing.clear();
    openId = undefined;
    showState("offline");
  };
}
