/**
 * The chat client: one Socket.IO connection plus REST, keeping each joined conversation whole.
 *
 * - Per joined conversation it keeps a Timeline (messages by `id`, the `seq` watermark). On every
 *   (re)connect it re-joins with `sinceSeq`, merges `missed` and pages the rest by `after=`; a hole
 *   seen in live traffic is closed the same way. Every message is announced once, by `id`.
 * - Every send carries a `clientMessageId` and is retried, by socket while connected and by REST
 *   otherwise, until answered: the server's `(conversationId, senderId, clientMessageId)`
 *   idempotency turns any repeat into the original, so retries never duplicate.
 * - Sends of one conversation go out one after another, so retries cannot reorder them.
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import type {
  ClientToServerEvents,
  JoinAck,
  MessageData,
  PresenceEvent,
  SendAck,
  ServerToClientEvents,
  TypingEvent,
} from "@chat/protocol";
import { Limits } from "@chat/protocol/limits";
import { checkOutgoing } from "./outgoing.ts";
import { Emitter } from "./emitter.ts";
import { ChatError } from "./errors.ts";
import { newClientMessageId, subjectOf } from "./ids.ts";
import { createRestApi, type FetchLike, type RestApi } from "./rest.ts";
import { Timeline } from "./timeline.ts";
import { TypingThrottle } from "./typing.ts";
import { defaultOutboxStorage, type OutboxEntry, type OutboxState, type OutboxStorage } from "./outbox.ts";

/** `connecting` before the first connection, `reconnecting` after losing one, `offline` when not trying. */
export type ConnectionState = "connecting" | "connected" | "reconnecting" | "offline";

/** Where newly known messages came from. */
export type MessageSource = "live" | "history" | "older" | "catchup" | "sent";

export interface MessagesEvent {
  conversationId: string;
  /** Messages not announced before, ascending by `seq`. */
  messages: MessageData[];
  source: MessageSource;
}

/** Messages the client stopped holding (the oldest, beyond `maxMessages`); `loadOlder` brings them back. */
export interface TrimmedEvent {
  conversationId: string;
  /** Ascending by `seq`. */
  messages: MessageData[];
}

/** A change of one outbox entry: queued or retried (`pending`), stored (`sent`), refused (`failed`). */
export interface OutboxEvent {
  conversationId: string;
  clientMessageId: string;
  state: OutboxState;
  entry: OutboxEntry;
  /** The stored message, when `sent`. */
  message?: MessageData;
}

export interface ChatClientEvents {
  outbox: [OutboxEvent];
  state: [ConnectionState];
  messages: [MessagesEvent];
  trimmed: [TrimmedEvent];
  typing: [TypingEvent];
  presence: [PresenceEvent];
  error: [ChatError];
}

export type ChatSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export interface ChatClientOptions {
  /** Origin of a node or of the load balancer; the page passes its own (`location.origin`). */
  url: string;
  token: string;
  /** Replaces `globalThis.fetch` for every REST call. */
  fetch?: FetchLike;
  /** Passed to `io()`; `auth` is the client's own. */
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
  /** How long to wait for an acknowledgement before retrying. Default 5000. */
  ackTimeoutMs?: number;
  /** How long a send keeps retrying before it fails. Default 60000. */
  sendTimeoutMs?: number;
  /** At most one `typing` per this interval while typing goes on. Default 1000. */
  typingIntervalMs?: number;
  /** Messages loaded on join and per older page. Default 50. */
  pageSize?: number;
  /** How long a hole in live traffic may last before it is fetched. Default 500. */
  gapFillDelayMs?: number;
  /**
   * Messages held per joined conversation. Beyond it the oldest are dropped (`trimmed` event) and
   * stay reachable by `loadOlder`. Once the reader loads an older page, that conversation holds
   * everything until `trim()`. Default 1000; `Infinity` holds everything until `leave()`. At least
   * `pageSize` (the constructor refuses less, as it refuses less than 1).
   */
  maxMessages?: number;
  /**
   * Where unsent messages are kept across reloads and restarts. Default: IndexedDB in browsers,
   * memory elsewhere (`JsonFileOutboxStorage` from `@chat/client/node` keeps them in a file).
   */
  outbox?: OutboxStorage;
  /**
   * The longest message the node accepts, checked before sending. Default: what the node's
   * `GET /limits` says once connected, until then the protocol's default (4000).
   */
  maxMessageLength?: number;
}

export interface SendOptions {
  /** Reuse to retry a send the caller gave up on; the server answers the original. */
  clientMessageId?: string;
}

/** The join answer: everything held for the conversation, ascending by `seq`. */
export interface JoinResult {
  conversationId: string;
  messages: MessageData[];
  hasOlder: boolean;
}

/** The page size of catch-up by REST: the contract's maximum. */
const CATCH_UP_PAGE = 200;
/** Bounds a catch-up loop: 1000 pages of 200. */
const CATCH_UP_MAX_PAGES = 1000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function toChatError(err: unknown): ChatError {
  if (err instanceof ChatError) return err;
  const message = err instanceof Error ? err.message : String(err);
  // socket.io-client's own failures: "operation has timed out", "socket has been disconnected".
  return new ChatError(/timed out/.test(message) ? "TIMEOUT" : "NETWORK", message, { cause: err });
}

export class ChatClient extends Emitter<ChatClientEvents> {
  /** The user id the token names (read, not verified). */
  readonly userId: string | undefined;
  readonly rest: RestApi;
  /** The underlying socket, for diagnostics and tests. */
  readonly socket: ChatSocket;
  private token: string;
  private currentState: ConnectionState = "connecting";
  private everConnected = false;
  private closed = false;
  private readonly opts: Required<Pick<ChatClientOptions, "ackTimeoutMs" | "sendTimeoutMs" | "pageSize" | "gapFillDelayMs" | "maxMessages">>;
  private readonly timelines = new Map<string, Timeline>();
  /** Per conversation: the socket id it is joined on, so a join is not repeated on one connection. */
  private readonly joinedOn = new Map<string, string>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly sendChains = new Map<string, Promise<unknown>>();
  private readonly gapTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly typingThrottle: TypingThrottle;
  private readonly detachWindow: () => void;
  private readonly outboxStorage: OutboxStorage;
  private readonly outboxScope: string;
  private readonly outboxEntries = new Map<string, OutboxEntry>();
  private readonly inFlight = new Set<string>();
  private maxMessageLength: number;
  private limitsKnown: boolean;
  /** Resolves once the outbox kept by an earlier page or process is loaded and its sends resumed. */
  readonly ready: Promise<void>;

  constructor(options: ChatClientOptions) {
    super();
    this.token = options.token;
    this.userId = subjectOf(options.token);
    this.opts = {
      ackTimeoutMs: options.ackTimeoutMs ?? 5000,
      sendTimeoutMs: options.sendTimeoutMs ?? 60_000,
      pageSize: options.pageSize ?? 50,
      gapFillDelayMs: options.gapFillDelayMs ?? 500,
      maxMessages: options.maxMessages ?? 1000,
    };
    if (!(this.opts.maxMessages >= 1)) throw new RangeError(`maxMessages must be at least 1, got ${options.maxMessages}`);
    // A timeline must hold a whole newest page, or it would announce messages and trim them at once.
    if (!(this.opts.maxMessages >= this.opts.pageSize)) {
      throw new RangeError(`maxMessages must be at least pageSize (${this.opts.pageSize}), got ${options.maxMessages}`);
    }
    this.rest = createRestApi({ baseUrl: options.url, getToken: () => this.token, fetch: options.fetch });
    this.typingThrottle = new TypingThrottle(
      {
        typing: (conversationId) => this.emitIfConnected("typing", { conversationId }),
        stopTyping: (conversationId) => this.emitIfConnected("stopTyping", { conversationId }),
      },
      options.typingIntervalMs ?? 1000,
    );
    this.socket = io(options.url, {
      ...options.socketOptions,
      // A function, so that a reconnection presents the token set by setToken().
      auth: (cb) => cb({ token: this.token }),
    });
    this.maxMessageLength = options.maxMessageLength ?? Limits.defaultMaxMessageLength;
    this.limitsKnown = options.maxMessageLength !== undefined;
    this.outboxStorage = options.outbox ?? defaultOutboxStorage();
    this.outboxScope = `${options.url.replace(/\/+$/, "")}|${this.userId ?? ""}`;
    this.wireSocket();
    this.detachWindow = this.wireBrowserNetwork();
    this.ready = this.restoreOutbox();
  }

  /** The connection state now; changes are announced by the `state` event. */
  get state(): ConnectionState {
    return this.currentState;
  }

  /** Replaces the token for the next REST call and the next (re)connection. */
  setToken(token: string): void {
    this.token = token;
  }

  /** Messages held for a joined conversation, ascending by `seq`. */
  messages(conversationId: string): MessageData[] {
    return this.timelines.get(conversationId)?.messages() ?? [];
  }

  /** The `seq` up to which nothing is missing in a joined conversation (0 when unknown). */
  lastSeq(conversationId: string): number {
    return this.timelines.get(conversationId)?.watermark ?? 0;
  }

  /**
   * Joins a conversation: loads its newest page of history, joins its room (now, or as soon as the
   * socket connects) with `sinceSeq`, and keeps it whole from then on, across reconnections.
   */
  async join(conversationId: string): Promise<JoinResult> {
    let timeline = this.timelines.get(conversationId);
    if (!timeline) {
      timeline = new Timeline(conversationId, this.opts.maxMessages);
      this.timelines.set(conversationId, timeline);
    }
    const t = timeline;
    try {
      await this.exclusive(conversationId, async () => {
        if (!t.anchored) await this.loadNewest(conversationId, t);
        if (!this.socket.connected) return;
        try {
          await this.joinRoom(conversationId);
        } catch (err) {
          const e = toChatError(err);
          // A transport failure is repaired by the next connection's re-join; a refusal is final.
          if (!e.retryable) throw e;
          this.emit("error", e);
        }
      });
    } catch (err) {
      const e = toChatError(err);
      // A refusal (FORBIDDEN, NOT_FOUND) ends the join. A transport failure (network down, node
      // restarting, 503) keeps the conversation joined but unloaded: the next connection loads its
      // newest page and joins its room, and calling join() again retries at once.
      if (!e.retryable && this.timelines.get(conversationId) === t && !t.anchored) this.timelines.delete(conversationId);
      throw e;
    }
    return { conversationId, messages: t.messages(), hasOlder: t.hasOlder };
  }

  /** True once the conversation's newest page is loaded (join() succeeded, or a later retry did). */
  isLoaded(conversationId: string): boolean {
    return this.timelines.get(conversationId)?.anchored ?? false;
  }

  /** Loads the newest page of an unanchored timeline and anchors its watermark there. */
  private async loadNewest(conversationId: string, t: Timeline): Promise<void> {
    const page = await this.rest.history(conversationId, { limit: this.opts.pageSize });
    if (this.timelines.get(conversationId) !== t || t.anchored) return;
    t.hasOlder = page.hasMore;
    this.accept(conversationId, page.messages, "history");
    t.anchor(page.messages.at(-1)?.seq ?? 0);
  }

  /** Leaves a conversation: its room, its typing, and what the client held of it. */
  async leave(conversationId: string): Promise<void> {
    this.typingThrottle.stop(conversationId);
    this.timelines.delete(conversationId);
    this.joinedOn.delete(conversationId);
    clearTimeout(this.gapTimers.get(conversationId));
    this.gapTimers.delete(conversationId);
    if (this.socket.connected) {
      await this.socket.timeout(this.opts.ackTimeoutMs).emitWithAck("leaveConversation", { conversationId }).catch(() => undefined);
    }
  }

  /** Loads the page before the oldest message held; returns the messages it added. */
  async loadOlder(conversationId: string, limit = this.opts.pageSize): Promise<MessageData[]> {
    const t = this.timelines.get(conversationId);
    if (!t || !t.hasOlder) return [];
    const before = t.oldestSeq ?? t.watermark + 1;
    if (before <= 1) {
      t.hasOlder = false;
      return [];
    }
    const page = await this.rest.history(conversationId, { before, limit });
    t.hasOlder = page.hasMore;
    return this.accept(conversationId, page.messages, "older");
  }

  /**
   * Bounds the conversation to `keep` messages again (default `maxMessages`), ending the hold that
   * `loadOlder` started, and drops the oldest beyond it now; announces them with `trimmed`. The page
   * calls it when the reader is back at the newest messages.
   */
  trim(conversationId: string, keep = this.opts.maxMessages): MessageData[] {
    const t = this.timelines.get(conversationId);
    if (!t) return [];
    t.limit = Math.max(1, keep);
    return this.announceTrimmed(conversationId, t.trim());
  }

  /** True while older history remains to be paged in a joined conversation. */
  hasOlder(conversationId: string): boolean {
    return this.timelines.get(conversationId)?.hasOlder ?? false;
  }

  /**
   * Sends a message and resolves with the stored one. The message is first written to the outbox
   * (state `pending`), then sent, retried (socket while connected, REST otherwise) until answered
   * or `sendTimeoutMs` passes; a refusal (FORBIDDEN, NOT_FOUND, too large, ...) fails at once and
   * leaves the entry `failed`. A send that timed out stays `pending` and goes out again, with the
   * same `clientMessageId`, at the next connection or the next start of a client on the same
   * outbox. Input the SDK can judge (empty, too long, malformed ids) is refused with a ChatError
   * before anything is stored or sent. Ends the user's typing first.
   */
  send(conversationId: string, message: string, options: SendOptions = {}): Promise<MessageData> {
    const refusal = checkOutgoing(conversationId, message, options.clientMessageId, this.maxMessageLength);
    if (refusal) return Promise.reject(refusal);
    const clientMessageId = options.clientMessageId ?? newClientMessageId();
    this.typingThrottle.stop(conversationId);
    const known = this.outboxEntries.get(clientMessageId);
    const entry: OutboxEntry = known ?? { clientMessageId, conversationId, message, createdAt: new Date().toISOString(), state: "pending" };
    entry.state = "pending";
    delete entry.error;
    this.outboxEntries.set(clientMessageId, entry);
    this.emitOutbox(entry, "pending");
    return this.deliver(entry, this.persist(entry));
  }

  /** The outbox: sends not yet stored (`pending`) or refused (`failed`), oldest first. */
  outbox(conversationId?: string): OutboxEntry[] {
    return [...this.outboxEntries.values()]
      .filter((e) => conversationId === undefined || e.conversationId === conversationId)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt))
      .map((e) => ({ ...e }));
  }

  /** Sends a `failed` (or stuck `pending`) outbox entry again, with its original `clientMessageId`. */
  retry(clientMessageId: string): Promise<MessageData> {
    const entry = this.outboxEntries.get(clientMessageId);
    if (!entry) return Promise.reject(new ChatError("NOT_FOUND", `no outbox entry ${clientMessageId}`));
    return this.send(entry.conversationId, entry.message, { clientMessageId });
  }

  /** Forgets an outbox entry (the app's "delete" on a failed message). An entry in flight may still arrive. */
  async discard(clientMessageId: string): Promise<void> {
    this.outboxEntries.delete(clientMessageId);
    await this.outboxStorage.remove(this.outboxScope, clientMessageId);
  }

  /** Sends an outbox entry after the earlier sends of its conversation; keeps the outbox true. */
  private deliver(entry: OutboxEntry, before: Promise<void> = Promise.resolve()): Promise<MessageData> {
    const { conversationId, clientMessageId } = entry;
    this.inFlight.add(clientMessageId);
    const previous = this.sendChains.get(conversationId) ?? Promise.resolve();
    const run = previous
      .catch(() => undefined)
      .then(() => before)
      .then(() => this.sendWithRetry(conversationId, entry.message, clientMessageId));
    this.sendChains.set(conversationId, run);
    void run
      .then(
        (stored) => {
          this.outboxEntries.delete(clientMessageId);
          this.emitOutbox(entry, "sent", stored);
          return this.outboxStorage.remove(this.outboxScope, clientMessageId);
        },
        (err: unknown) => {
          const e = toChatError(err);
          if (e.retryable || this.outboxEntries.get(clientMessageId) !== entry) return;
          entry.state = "failed";
          entry.error = { code: e.code, message: e.message };
          this.emitOutbox(entry, "failed");
          return this.persist(entry);
        },
      )
      .catch((err: unknown) => this.emit("error", toChatError(err)))
      .finally(() => {
        this.inFlight.delete(clientMessageId);
        if (this.sendChains.get(conversationId) === run) this.sendChains.delete(conversationId);
      });
    return run;
  }

  /** Writes an entry to the outbox storage; a storage failure is reported, never blocks the send. */
  private persist(entry: OutboxEntry): Promise<void> {
    return this.outboxStorage.save(this.outboxScope, { ...entry }).catch((err: unknown) => {
      this.emit("error", new ChatError("INTERNAL", "the outbox storage failed", { cause: err }));
    });
  }

  private emitOutbox(entry: OutboxEntry, state: OutboxState, message?: MessageData): void {
    this.emit("outbox", { conversationId: entry.conversationId, clientMessageId: entry.clientMessageId, state, entry: { ...entry }, ...(message ? { message } : {}) });
  }

  /** Loads what an earlier page or process left in the outbox, and sends its pending entries. */
  private async restoreOutbox(): Promise<void> {
    let entries: OutboxEntry[];
    try {
      entries = await this.outboxStorage.load(this.outboxScope);
    } catch (err) {
      this.emit("error", new ChatError("INTERNAL", "the outbox storage failed", { cause: err }));
      return;
    }
    entries.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    for (const entry of entries) {
      if (this.closed || this.outboxEntries.has(entry.clientMessageId)) continue;
      this.outboxEntries.set(entry.clientMessageId, entry);
      this.emitOutbox(entry, entry.state);
      if (entry.state === "pending") this.deliver(entry).catch(() => undefined);
    }
  }

  /** Sends again every pending entry not already going out (after a send timed out offline). */
  private resumeOutbox(): void {
    for (const entry of this.outboxEntries.values()) {
      if (entry.state === "pending" && !this.inFlight.has(entry.clientMessageId)) this.deliver(entry).catch(() => undefined);
    }
  }

  /** Learns the node's MAX_MESSAGE_LENGTH once, unless the app set it. */
  private learnLimits(): void {
    if (this.limitsKnown) return;
    this.limitsKnown = true;
    this.rest.limits().then(
      (limits) => {
        if (Number.isInteger(limits.maxMessageLength) && limits.maxMessageLength > 0) this.maxMessageLength = limits.maxMessageLength;
      },
      () => {
        this.limitsKnown = false;
      },
    );
  }

  /** Call on every change of the input box: throttled `typing`, and `stopTyping` when it empties. */
  inputChanged(conversationId: string, value: string): void {
    this.typingThrottle.input(conversationId, value);
  }

  /** Ends the user's typing in a conversation at once. */
  stopTyping(conversationId: string): void {
    this.typingThrottle.stop(conversationId);
  }

  /** Connects again after the client went `offline` (refused, closed by the server, gave up). */
  reconnect(): void {
    if (this.closed || this.socket.connected) return;
    this.socket.connect();
    this.setState(this.disconnectedState());
  }

  /** Disconnects for good and forgets every listener and conversation. */
  close(): void {
    this.closed = true;
    for (const timer of this.gapTimers.values()) clearTimeout(timer);
    this.gapTimers.clear();
    this.detachWindow();
    this.socket.disconnect();
    this.setState("offline");
    this.timelines.clear();
    this.removeAllListeners();
  }

  private async sendWithRetry(conversationId: string, message: string, clientMessageId: string): Promise<MessageData> {
    const deadline = Date.now() + this.opts.sendTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      let stored: MessageData;
      try {
        stored = this.socket.connected
          ? await this.sendBySocket(conversationId, message, clientMessageId)
          : (await this.rest.postMessage(conversationId, { message, clientMessageId })).message;
      } catch (err) {
        const e = toChatError(err);
        if (!e.retryable || this.closed || Date.now() >= deadline) throw e;
        const backoff = e.retryAfter !== undefined ? e.retryAfter * 1000 : Math.min(250 * 2 ** (attempt - 1), 4000);
        await sleep(Math.max(0, Math.min(backoff, deadline - Date.now())));
        continue;
      }
      this.accept(conversationId, [stored], "sent");
      return stored;
    }
  }

  private async sendBySocket(conversationId: string, message: string, clientMessageId: string): Promise<MessageData> {
    const ack: SendAck = await this.socket
      .timeout(this.opts.ackTimeoutMs)
      .emitWithAck("sendMessage", { conversationId, message, clientMessageId });
    if (!ack.ok) throw ChatError.fromBody(ack.error);
    return ack.message;
  }

  /** Joins the room, retrying a few times while the same connection lasts (a new one re-joins anyway). */
  private async joinRoom(conversationId: string): Promise<void> {
    const socketId = this.socket.id;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.joinRoomOnce(conversationId);
        return;
      } catch (err) {
        const e = toChatError(err);
        if (!e.retryable || attempt >= 5 || this.closed || this.socket.id !== socketId) throw e;
        await sleep(250 * 2 ** attempt);
      }
    }
  }

  /** Joins the room on the current connection with `sinceSeq`, then closes any gap. */
  private async joinRoomOnce(conversationId: string): Promise<void> {
    const t = this.timelines.get(conversationId);
    const socketId = this.socket.id;
    if (!t || !socketId || this.joinedOn.get(conversationId) === socketId) return;
    const payload = t.anchored ? { conversationId, sinceSeq: t.watermark } : { conversationId };
    const ack: JoinAck = await this.socket.timeout(this.opts.ackTimeoutMs).emitWithAck("joinConversation", payload);
    if (!ack.ok) throw ChatError.fromBody(ack.error);
    this.joinedOn.set(conversationId, socketId);
    const missed = ack.missed ?? [];
    this.accept(conversationId, missed, "catchup");
    const more = ack.hasMore ?? missed.length >= CATCH_UP_PAGE;
    if (more) await this.catchUp(conversationId);
    else if (this.timelines.get(conversationId) === t) t.anchor(ack.lastSeq);
  }

  /** Fetches by `after=` from the watermark until the server has nothing more. */
  private async catchUp(conversationId: string): Promise<void> {
    const t = this.timelines.get(conversationId);
    if (!t) return;
    let after = t.watermark;
    for (let i = 0; i < CATCH_UP_MAX_PAGES && this.timelines.get(conversationId) === t; i++) {
      const page = await this.rest.history(conversationId, { after, limit: CATCH_UP_PAGE });
      this.accept(conversationId, page.messages, "catchup");
      const last = page.messages.at(-1)?.seq;
      if (!page.hasMore || last === undefined) return;
      after = last;
    }
  }

  /** Merges into a joined conversation and announces what is new; schedules a gap fill. */
  private accept(conversationId: string, messages: readonly MessageData[], source: MessageSource): MessageData[] {
    const t = this.timelines.get(conversationId);
    if (!t || messages.length === 0) return [];
    const older = source === "older";
    const added = t.merge(messages, older);
    if (added.length > 0) this.emit("messages", { conversationId, messages: added, source });
    // The reader paged back: hold everything, new messages too, until trim() says they are back.
    if (older) t.limit = Number.POSITIVE_INFINITY;
    else this.announceTrimmed(conversationId, t.trim());
    if (t.anchored && t.hasGap) this.scheduleGapFill(conversationId);
    return added;
  }

  private announceTrimmed(conversationId: string, dropped: MessageData[]): MessageData[] {
    if (dropped.length > 0) this.emit("trimmed", { conversationId, messages: dropped });
    return dropped;
  }

  private scheduleGapFill(conversationId: string): void {
    if (this.gapTimers.has(conversationId) || this.closed) return;
    const timer = setTimeout(() => {
      this.gapTimers.delete(conversationId);
      const t = this.timelines.get(conversationId);
      if (!t?.hasGap) return;
      this.exclusive(conversationId, () => this.catchUp(conversationId)).catch((err: unknown) => this.emit("error", toChatError(err)));
    }, this.opts.gapFillDelayMs);
    this.gapTimers.set(conversationId, timer);
  }

  /** Runs `task` after every earlier task of the same conversation: joins and catch-ups never interleave. */
  private exclusive<T>(conversationId: string, task: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(conversationId) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(task);
    this.locks.set(conversationId, run);
    void run
      .finally(() => {
        if (this.locks.get(conversationId) === run) this.locks.delete(conversationId);
      })
      .catch(() => undefined);
    return run;
  }

  private emitIfConnected(event: "typing" | "stopTyping", payload: { conversationId: string }): void {
    // Typing is momentary: never buffered for a later connection.
    if (this.socket.connected) this.socket.emit(event, payload);
  }

  /** The state while not connected: `offline` when nothing will retry or the device has no network. */
  private disconnectedState(): ConnectionState {
    const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator;
    if (this.closed || !this.socket.active || nav?.onLine === false) return "offline";
    return this.everConnected ? "reconnecting" : "connecting";
  }

  private setState(state: ConnectionState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    this.emit("state", state);
  }

  private wireSocket(): void {
    const socket = this.socket;
    socket.on("connect", () => {
      this.everConnected = true;
      this.setState("connected");
      this.learnLimits();
      this.resumeOutbox();
      for (const [conversationId, t] of this.timelines) {
        this.exclusive(conversationId, async () => {
          // A join whose first page failed (opened while offline): load it now, before the room.
          if (!t.anchored) await this.loadNewest(conversationId, t);
          await this.joinRoom(conversationId);
        }).catch((err: unknown) => this.emit("error", toChatError(err)));
      }
    });
    socket.on("disconnect", () => {
      this.joinedOn.clear();
      this.typingThrottle.reset();
      this.setState(this.disconnectedState());
    });
    socket.on("connect_error", (err) => {
      if (socket.active) {
        this.setState(this.disconnectedState());
        return;
      }
      // Refused by the server's middleware (UNAUTHORIZED, UNAVAILABLE): socket.io will not retry.
      this.setState("offline");
      const code = err.message === "UNAUTHORIZED" ? "UNAUTHORIZED" : "UNAVAILABLE";
      this.emit("error", new ChatError(code, `connection refused: ${err.message}`, { cause: err }));
    });
    socket.io.on("reconnect_failed", () => this.setState("offline"));
    socket.on("newMessage", (message) => this.accept(message.conversationId, [message], "live"));
    socket.on("typing", (event) => this.emit("typing", event));
    socket.on("presence", (event) => this.emit("presence", event));
  }

  /** In a browser, shows `offline` while the device has no network, and retries when it returns. */
  private wireBrowserNetwork(): () => void {
    const target = (globalThis as { window?: Window }).window;
    if (!target) return () => undefined;
    const onOffline = () => {
      if (!this.socket.connected) this.setState(this.disconnectedState());
    };
    const onOnline = () => {
      if (this.socket.connected || this.closed) return;
      if (this.socket.active) this.setState(this.disconnectedState());
      else this.reconnect();
    };
    target.addEventListener("offline", onOffline);
    target.addEventListener("online", onOnline);
    return () => {
      target.removeEventListener("offline", onOffline);
      target.removeEventListener("online", onOnline);
    };
  }
}

/** Creates a client and starts connecting. */
export function createChatClient(options: ChatClientOptions): ChatClient {
  return new ChatClient(options);
}
