/**
 * The typing this node's sockets were last shown, whoever's: a `true` from another node whose
 * `false` was lost while Redis was away would otherwise stay on screen for good. While the broker
 * is down, a shown `true` older than the typing window (plus a margin) is ended on this node's
 * sockets; when it is back, every shown `true` that no node's claim backs any more is ended too.
 * The typists' own nodes re-claim their live typing on recovery (TypingTracker.reclaim), so typing
 * that goes on is shown again.
 */
import type { TypingArbiter } from "../broker/types.ts";

export type LocalTypingEnd = (conversationId: string, userId: string) => void;

interface Shown {
  conversationId: string;
  userId: string;
  /** Date.now() when the `true` was delivered here. */
  at: number;
}

const key = (conversationId: string, userId: string) => `${conversationId}\u0000${userId}`;

export class TypingView {
  private readonly shown = new Map<string, Shown>();
  private readonly timeoutMs: number;
  private readonly endLocally: LocalTypingEnd;
  /** True for typing of this node's own sessions: its tracker, not this view, ends those. */
  private readonly isOwn: (conversationId: string, userId: string) => boolean;
  private expirer: NodeJS.Timeout | undefined;

  constructor(timeoutMs: number, endLocally: LocalTypingEnd, isOwn: (conversationId: string, userId: string) => boolean) {
    this.timeoutMs = timeoutMs;
    this.endLocally = endLocally;
    this.isOwn = isOwn;
  }

  observe(conversationId: string, userId: string, isTyping: boolean): void {
    const k = key(conversationId, userId);
    if (!isTyping) {
      this.shown.delete(k);
      return;
    }
    this.shown.delete(k);
    this.shown.set(k, { conversationId, userId, at: Date.now() });
    // Bounded: a `true` whose room emptied before its `false` is forgotten, oldest first.
    if (this.shown.size > 100_000) this.shown.delete(this.shown.keys().next().value as string);
  }

  private end(k: string, s: Shown): void {
    this.shown.delete(k);
    this.endLocally(s.conversationId, s.userId);
  }

  /** The broker went away: shown typing lapses by the clock until it is back. */
  down(): void {
    if (this.expirer) return;
    const margin = Math.min(1000, this.timeoutMs / 2);
    this.expirer = setInterval(() => {
      const due = Date.now() - this.timeoutMs - margin;
      for (const [k, s] of this.shown) if (s.at < due && !this.isOwn(s.conversationId, s.userId)) this.end(k, s);
    }, Math.max(50, Math.floor(margin / 2)));
    this.expirer.unref();
  }

  /** The broker is back: once the typists' nodes re-claimed (`settleMs`), what no claim backs ends. */
  recovered(arbiter: TypingArbiter | undefined, settleMs: number): void {
    clearInterval(this.expirer);
    this.expirer = undefined;
    if (!arbiter) return;
    setTimeout(() => {
      for (const [k, s] of [...this.shown]) {
        if (this.isOwn(s.conversationId, s.userId)) continue;
        void arbiter.live(s.conversationId, s.userId).then((live) => {
          if (!live && this.shown.get(k) === s) this.end(k, s);
        });
      }
    }, settleMs).unref();
  }

  close(): void {
    clearInterval(this.expirer);
    this.shown.clear();
  }
}
