/**
 * Typing state of this node: one entry per (conversation, user) over all of that user's sessions
 * here, holding one Timeout. A further `typing` within the window only `refresh()`es that timer:
 * no re-broadcast, no new timer. The transitions are the only broadcasts: `true` on the first,
 * `false` once, on expiry or on an explicit end (a send by the user on any node, stopTyping, and
 * the leave or disconnect of the last session still typing).
 *
 * In a cluster a TypingArbiter (Redis) decides which of this node's transitions are the
 * cluster's: a user typing from sockets on two nodes broadcasts one `true`, and one `false` after
 * both stopped. A node that saw its end while another node's claim was live asks again when that
 * claim would lapse, so that a node dying mid-typing still ends in one `false`; and every node
 * sweeps the arbiter for typing whose every claim lapsed (the dying node held the only one), whose
 * `false` then goes to every socket of the room.
 */
import type { TypingArbiter, TypingEnd } from "../broker/types.ts";
import { wallNow } from "./ports.ts";

export type TypingEmit = (conversationId: string, userId: string, isTyping: boolean, exceptSessionId: string) => void;

interface Entry {
  conversationId: string;
  userId: string;
  /** The session whose `typing` began the window: the broadcasts skip it. */
  firstSession: string;
  /** Each session typing in the window, with the wall-clock ms of its last `typing`. */
  sessions: Map<string, number>;
  timer: NodeJS.Timeout;
  /** When the arbiter last heard of this window (begin or refresh). */
  claimedAt: number;
  /** Wall-clock ms of the last `typing`, of any session. */
  lastAt: number;
}

const key = (conversationId: string, userId: string) => `${conversationId}\u0000${userId}`;

export class TypingTracker {
  private readonly entries = new Map<string, Entry>();
  private readonly timeoutMs: number;
  private readonly emit: TypingEmit;
  private readonly arbiter: TypingArbiter | undefined;
  /** Pending re-asks for ends that found another node's claim live. */
  private readonly rechecks = new Map<string, NodeJS.Timeout>();
  private closed = false;
  private readonly sweeper: NodeJS.Timeout | undefined;

  constructor(timeoutMs: number, emit: TypingEmit, arbiter?: TypingArbiter) {
    this.timeoutMs = timeoutMs;
    this.emit = emit;
    this.arbiter = arbiter;
    if (arbiter) {
      this.sweeper = setInterval(() => void this.sweep(arbiter), arbiter.sweepEveryMs);
      this.sweeper.unref();
    }
  }

  private async sweep(arbiter: TypingArbiter): Promise<void> {
    for (const { conversationId, userId } of await arbiter.sweep()) {
      if (this.closed) return;
      // Nobody's socket typed it here: the room hears it from this node, every socket of it.
      this.emit(conversationId, userId, false, "");
    }
  }

  /** Starts or extends typing of the user from `sessionId`; true when this was this node's transition. */
  start(conversationId: string, userId: string, sessionId: string): boolean {
    const k = key(conversationId, userId);
    const existing = this.entries.get(k);
    const a = this.arbiter;
    const now = wallNow();
    if (existing) {
      existing.timer.refresh();
      existing.lastAt = now;
      existing.sessions.set(sessionId, now);
      if (a && Date.now() - existing.claimedAt >= a.refreshAfterMs) {
        existing.claimedAt = Date.now();
        void a.begin(conversationId, userId);
      }
      return false;
    }
    const entry: Entry = {
      conversationId,
      userId,
      firstSession: sessionId,
      sessions: new Map([[sessionId, now]]),
      timer: setTimeout(() => this.end(conversationId, userId), this.timeoutMs),
      claimedAt: Date.now(),
      lastAt: now,
    };
    entry.timer.unref();
    this.entries.set(k, entry);
    if (!a) this.emit(conversationId, userId, true, sessionId);
    else void a.begin(conversationId, userId).then((first) => first && !this.closed && this.emit(conversationId, userId, true, sessionId));
    return true;
  }

  /**
   * Ends the user's typing now, whichever sessions typed; true when the user was typing here. With
   * `unlessAfter` (wall-clock ms), typing refreshed after that moment is left alone: a send ends the
   * typing that came before it, not the typing of the next message, which may arrive while the send
   * is being stored.
   */
  end(conversationId: string, userId: string, unlessAfter?: number): boolean {
    const k = key(conversationId, userId);
    const entry = this.entries.get(k);
    if (!entry) return false;
    if (unlessAfter !== undefined && entry.lastAt > unlessAfter) return false;
    clearTimeout(entry.timer);
    this.entries.delete(k);
    if (!this.arbiter) this.emit(conversationId, userId, false, entry.firstSession);
    else void this.arbiter.end(conversationId, userId).then((r) => this.settled(conversationId, userId, entry.firstSession, r));
    return true;
  }

  /**
   * One session of the user stopped counting (it left the room or disconnected). The typing ends
   * now when no other session of the user typed within the window; otherwise it runs on.
   */
  endBySession(conversationId: string, userId: string, sessionId: string): void {
    const entry = this.entries.get(key(conversationId, userId));
    if (!entry || !entry.sessions.delete(sessionId)) return;
    const since = wallNow() - this.timeoutMs;
    for (const [id, at] of entry.sessions) if (at < since) entry.sessions.delete(id);
    if (entry.sessions.size === 0) this.end(conversationId, userId);
  }

  private settled(conversationId: string, userId: string, sessionId: string, r: TypingEnd): void {
    if (this.closed) return;
    if (r.ended) return this.emit(conversationId, userId, false, sessionId);
    const a = this.arbiter;
    if (!a || r.recheckInMs === undefined) return;
    const k = key(conversationId, userId);
    clearTimeout(this.rechecks.get(k));
    const timer = setTimeout(() => {
      this.rechecks.delete(k);
      void a.recheck(conversationId, userId).then((again) => this.settled(conversationId, userId, sessionId, again));
    }, r.recheckInMs + 20);
    timer.unref();
    this.rechecks.set(k, timer);
  }

  /** True when the user types here now (from some session of this node). */
  has(conversationId: string, userId: string): boolean {
    return this.entries.has(key(conversationId, userId));
  }

  /**
   * After a broker outage (Redis may have restarted empty): every typing still live here claims
   * again; where that makes it the cluster's start, `true` goes out again, since watchers on other
   * nodes may have ended it meanwhile.
   */
  reclaim(): void {
    const a = this.arbiter;
    if (!a) return;
    for (const e of this.entries.values()) {
      e.claimedAt = Date.now();
      void a.begin(e.conversationId, e.userId).then((first) => {
        if (first && !this.closed && this.entries.get(key(e.conversationId, e.userId)) === e) this.emit(e.conversationId, e.userId, true, e.firstSession);
      });
    }
  }

  /** Typing entries currently held. */
  get size(): number {
    return this.entries.size;
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const e of this.entries.values()) clearTimeout(e.timer);
    this.entries.clear();
    for (const t of this.rechecks.values()) clearTimeout(t);
    this.rechecks.clear();
  }
}
