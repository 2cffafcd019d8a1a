/**
 * The signed-in page: conversation list and creation, the open conversation (history, older pages
 * on scroll, live messages, typing, presence), the send box and the connection status. All state
 * that must survive reconnection (seq, dedupe, retries) lives in the SDK; this file only shows it.
 */
import { ChatError, createChatClient, newClientMessageId, type ConnectionState } from "@chat/client";
import type { Conversation, PresenceEvent } from "@chat/protocol";
import { byTestId, el } from "./dom.ts";
import { MessageList } from "./message-list.ts";
import { PresenceView } from "./presence-view.ts";
import { TypingIndicator } from "./typing-indicator.ts";

const LIST_REFRESH_MS = 5000;
/** Bounds the older pages loaded at once to fill a tall window. */
const MAX_FILL_PAGES = 5;
/**
 * The node's MAX_MESSAGE_LENGTH default (UTF-16 code units, as HTML's maxlength counts), until
 * `GET /limits` answers with the node's own; a PAYLOAD_TOO_LARGE answer naming a lower one (a node
 * behind the same balancer configured lower) lowers it.
 */
const DEFAULT_MAX_MESSAGE_LENGTH = 4000;

/** A send not stored yet; `failed` holds the reason once it finally failed. */
interface PendingSend {
  text: string;
  failed?: string;
}

export interface ChatViewOptions {
  token: string;
  userId: string;
  /** The node refused the token (REST 401, or the socket's UNAUTHORIZED). */
  onUnauthorized(err: ChatError): void;
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
    typingRoot: byTestId("typing-indicator"),
    refusedNote: byTestId("conversation-error"),
  };
  const messageList = new MessageList(ui.messages, byTestId("history-status"), me);
  const typing = new TypingIndicator(ui.typingRoot, byTestId("typing-text"));
  const presence = new PresenceView(byTestId("presence"));

  let conversations: Conversation[] = [];
  let openId: string | undefined;
  let loadingOlder = false;
  /** False while the open conversation's newest page has not loaded: retried on reconnection and on opening it again. */
  let openLoaded = false;
  /** Per conversation, its sends not stored yet, in order: shown again when the user comes back to it. */
  const pendingSends = new Map<string, Map<string, PendingSend>>();
  /** The clientMessageIds this page sent itself (send() follows them); the others come from the outbox. */
  const ownSends = new Set<string>();
  /** Presence events received while a REST snapshot is in flight: applied again over it (they are newer). */
  const presenceInFlight = new Set<PresenceEvent[]>();
  /** Per conversation, the highest seq the user has had on screen: the unread badge counts beyond it. */
  const seenSeq = new Map<string, number>();
  const cleanups: (() => void)[] = [];
  let stopped = false;
  /** A PAYLOAD_TOO_LARGE named a lower limit than the box had. */
  let lowered = false;
  const listen = <K extends keyof WindowEventMap>(target: HTMLElement | Window | Document, type: K, fn: (e: WindowEventMap[K]) => void) => {
    target.addEventListener(type, fn as EventListener);
    cleanups.push(() => target.removeEventListener(type, fn as EventListener));
  };
  const report = (err: unknown) => {
    if (err instanceof ChatError && err.code === "UNAUTHORIZED") opts.onUnauthorized(err);
    else opts.showError(err instanceof ChatError ? `${err.code}: ${err.message}` : String(err));
  };

  function showState(state: ConnectionState): void {
    ui.status.dataset.state = state;
    const label = ui.status.querySelector(".status-label");
    if (label) label.textContent = state;
  }

  function titleOf(c: Conversation): string {
    return c.title || c.members.filter((m) => m !== me).join(", ") || "Just me";
  }

  /** The title as nodes: each user-chosen part in its own <bdi>, so bidi controls in it stay inside. */
  function titleNodes(c: Conversation): (Node | string)[] {
    if (c.title) return [el("bdi", {}, c.title)];
    const others = c.members.filter((m) => m !== me);
    return others.length === 0 ? ["Just me"] : others.flatMap((m, i) => (i === 0 ? [el("bdi", {}, m)] : [", ", el("bdi", {}, m)]));
  }

  /** Plain text naming a user-chosen string inside a sentence: isolated by FSI … PDI. */
  const isolate = (text: string) => `\u2068${text}\u2069`;

  const hashOf = (id: string) => `#/c/${encodeURIComponent(id)}`;
  const clearHash = () => history.replaceState(null, "", location.pathname + location.search);

  function renderList(): void {
    ui.list.replaceChildren(
      ...conversations.map((c) => {
        if (!seenSeq.has(c.id)) seenSeq.set(c.id, c.lastSeq);
        const unread = c.id === openId ? 0 : Math.max(0, c.lastSeq - (seenSeq.get(c.id) ?? 0));
        const item = el(
          "li",
          { "data-testid": "conversation-item", "data-conversation-id": c.id, "data-active": String(c.id === openId), tabindex: "0" },
          el("span", { class: "conversation-name" }, ...titleNodes(c)),
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
      if (err instanceof ChatError && err.code === "UNAUTHORIZED") opts.onUnauthorized(err);
    }
  }

  /** The presence snapshot by REST; call it after the room is joined, so it includes this user's own join. */
  async function refreshPresence(id: string): Promise<void> {
    const conv = conversations.find((c) => c.id === id);
    const during: PresenceEvent[] = [];
    presenceInFlight.add(during);
    try {
      const { online } = await client.rest.presence(id);
      if (openId === id) presence.reset(conv?.members ?? online, online);
    } catch {
      if (openId === id) presence.reset(conv?.members ?? [], []);
    } finally {
      presenceInFlight.delete(during);
    }
    // The answer may have been read before these events happened: never let it undo them.
    if (openId === id) for (const e of during) if (e.conversationId === id) presence.set(e.userId, e.online);
  }

  /** Joins the open conversation (its newest page, its room); on failure says so instead of "Beginning of the conversation". */
  async function loadOpen(id: string): Promise<void> {
    try {
      const joined = await client.join(id);
      if (openId !== id) return;
      openLoaded = true;
      messageList.setHistory(joined.hasOlder, false);
      void refreshPresence(id);
      await fillViewport(id);
      ui.input.focus();
    } catch (err) {
      if (openId !== id) return;
      if (err instanceof ChatError && !err.retryable && err.code !== "UNAUTHORIZED") {
        showRefused(id, err);
        return;
      }
      report(err);
      if (!client.isLoaded(id)) messageList.setHistoryFailed();
    }
  }

  /** A conversation this user may not open (not a member, unknown): an error in its place, no composer, and out of the URL. */
  function showRefused(id: string, err: ChatError): void {
    openId = undefined;
    openLoaded = false;
    typing.clear();
    messageList.clear();
    presence.reset([], []);
    ui.messages.hidden = true;
    ui.typingRoot.hidden = true;
    ui.sendForm.hidden = true;
    ui.refusedNote.dataset.code = err.code;
    ui.refusedNote.textContent =
      err.code === "FORBIDDEN"
        ? "You are not a member of this conversation."
        : err.code === "NOT_FOUND"
          ? "There is no such conversation."
          : `This conversation cannot be opened (${err.code}).`;
    ui.refusedNote.hidden = false;
    if (location.hash === hashOf(id)) clearHash();
    renderList();
  }

  /** Back to "Pick a conversation" (the URL names none). */
  function closeConversation(): void {
    const previous = openId;
    openId = undefined;
    openLoaded = false;
    if (previous) void client.leave(previous);
    typing.clear();
    messageList.clear();
    ui.conversation.hidden = true;
    ui.empty.hidden = false;
    renderList();
  }

  /**
   * Opens what the URL names: at start, and on Back/Forward or an edited hash. The page's own hash
   * writes name the open conversation already, so they change nothing. A malformed link is ignored.
   */
  function followHash(): void {
    if (stopped) return;
    const raw = /^#\/c\/(.+)$/.exec(location.hash)?.[1];
    if (raw === undefined) {
      if (openId !== undefined || !ui.conversation.hidden) closeConversation();
      return;
    }
    let id: string;
    try {
      id = decodeURIComponent(raw);
    } catch {
      // Not a link this page wrote (a malformed percent-escape): stay where we are.
      if (openId !== undefined) history.replaceState(null, "", hashOf(openId));
      else clearHash();
      return;
    }
    if (id !== openId) void openConversation(id);
  }

  /** Shows the conversation's sends still in flight, and those that failed with their Retry. */
  function renderPending(id: string): void {
    for (const [clientMessageId, p] of pendingSends.get(id) ?? []) {
      messageList.addPending(clientMessageId, p.text);
      if (p.failed !== undefined) messageList.markFailed(clientMessageId, p.failed, () => send(id, p.text, clientMessageId));
    }
  }

  async function openConversation(id: string): Promise<void> {
    if (id === openId) {
      // Opening it again retries a load that failed (offline, node restarting).
      if (!openLoaded) await loadOpen(id);
      return;
    }
    const previous = openId;
    openId = id;
    openLoaded = false;
    if (location.hash !== hashOf(id)) location.hash = hashOf(id);
    if (previous) void client.leave(previous);
    typing.clear();
    messageList.clear();
    ui.empty.hidden = true;
    ui.refusedNote.hidden = true;
    ui.messages.hidden = false;
    ui.typingRoot.hidden = false;
    ui.sendForm.hidden = false;
    ui.conversation.hidden = false;
    const conv = conversations.find((c) => c.id === id);
    ui.title.replaceChildren(...(conv ? titleNodes(conv) : [el("bdi", {}, id)]));
    ui.input.value = "";
    renderList();
    renderPending(id);
    await loadOpen(id);
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
    ownSends.add(clientMessageId);
    const entry: PendingSend = { text };
    let sends = pendingSends.get(id);
    if (!sends) pendingSends.set(id, (sends = new Map()));
    sends.set(clientMessageId, entry);
    client.send(id, text, { clientMessageId }).then(
      () => {
        pendingSends.get(id)?.delete(clientMessageId);
        // Normally gone already, replaced by the stored message; not when that message is older than what the client holds.
        messageList.removePending(clientMessageId);
      },
      (err: unknown) => {
        const reason = err instanceof ChatError ? err.code : "error";
        if (err instanceof ChatError && err.code === "PAYLOAD_TOO_LARGE") learnMaxLength(err.message);
        entry.failed = reason;
        if (openId === id) {
          messageList.markFailed(clientMessageId, reason, () => send(id, text, clientMessageId));
        } else {
          const conv = conversations.find((c) => c.id === id);
          opts.showError(`A message to "${isolate(conv ? titleOf(conv) : id)}" was not sent (${reason}): open it to retry.`);
        }
      },
    );
  }

  /** A node configured below the default says its limit in the refusal ("at most N characters"). */
  function learnMaxLength(message: string): void {
    const n = Number(/at most (\d+)/.exec(message)?.[1]);
    if (Number.isInteger(n) && n >= 1 && n < ui.input.maxLength) {
      ui.input.maxLength = n;
      lowered = true;
    }
  }

  // Sends an earlier page left in the outbox (IndexedDB) show as pending until stored, and as
  // failed with their Retry when the node refuses them; this page's own sends follow send().
  client.on("outbox", (e) => {
    if (ownSends.has(e.clientMessageId)) return;
    const id = e.conversationId;
    if (e.state === "sent") {
      pendingSends.get(id)?.delete(e.clientMessageId);
      messageList.removePending(e.clientMessageId);
      return;
    }
    let sends = pendingSends.get(id);
    if (!sends) pendingSends.set(id, (sends = new Map()));
    const known = sends.get(e.clientMessageId);
    const entry: PendingSend = known ?? { text: e.entry.message };
    sends.set(e.clientMessageId, entry);
    if (openId === id && !known) messageList.addPending(e.clientMessageId, entry.text);
    if (e.state === "failed") {
      entry.failed = e.entry.error?.code ?? "error";
      if (openId === id) messageList.markFailed(e.clientMessageId, entry.failed, () => send(id, entry.text, e.clientMessageId));
    }
  });

  client.on("state", (state) => {
    showState(state);
    if (state !== "connected") {
      typing.clear();
      return;
    }
    const id = openId;
    if (!id) return;
    if (!openLoaded) {
      void loadOpen(id);
      return;
    }
    // join() resolves once the room is joined on this connection (the SDK's re-join): the presence
    // snapshot is read after it, so it includes this user's own re-join.
    void client.join(id).then(
      () => refreshPresence(id),
      () => refreshPresence(id),
    );
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
    for (const during of presenceInFlight) during.push(e);
    if (e.conversationId === openId) presence.set(e.userId, e.online);
  });
  client.on("error", report);

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
    // Sent as typed (indentation of pasted code kept); only a blank message is refused.
    const text = ui.input.value;
    if (!openId || text.trim() === "") return;
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
  listen(window, "hashchange", followHash);
  const timer = setInterval(() => {
    if (document.visibilityState === "visible") void refreshList();
  }, LIST_REFRESH_MS);

  showState(client.state);
  if (ui.input.maxLength <= 0) ui.input.maxLength = DEFAULT_MAX_MESSAGE_LENGTH;
  client.rest.limits().then(
    (limits) => {
      // A refusal that lowered the limit meanwhile came from the node that counts (another may answer here).
      if (!stopped && !lowered && Number.isInteger(limits.maxMessageLength) && limits.maxMessageLength >= 1) ui.input.maxLength = limits.maxMessageLength;
    },
    () => undefined, // an older node without /limits: the default, lowered by refusals
  );
  ui.view.hidden = false;
  void refreshList().then(followHash);

  return () => {
    stopped = true;
    clearInterval(timer);
    for (const c of cleanups) c();
    client.close();
    ui.view.hidden = true;
    ui.conversation.hidden = true;
    ui.refusedNote.hidden = true;
    ui.messages.hidden = false;
    ui.typingRoot.hidden = false;
    ui.sendForm.hidden = false;
    ui.empty.hidden = false;
    ui.list.replaceChildren();
    messageList.clear();
    typing.clear();
    openId = undefined;
    showState("offline");
  };
}
