/**
 * Typing state of this node: one entry per (conversation, user) holding one Timeout. A further
 * `typing` within the window only `refresh()`es that timer: no re-broadcast, no new timer. The
 * transitions are the only broadcasts: `true` on the first, `false` once, on expiry or on an
 * explicit end (send, stopTyping, leave, disconnect).
 */
export type TypingEmit = (conversationId: string, userId: string, isTyping: boolean, exceptSocketId: string) => void;

interface Entry {
  conversationId: string;
  userId: string;
  socketId: string;
  timer: NodeJS.Timeout;
}

const key = (conversationId: string, userId: string) => `${conversationId}\u0000${userId}`;

export class TypingTracker {
  private readonly entries = new Map<string, Entry>();
  private readonly timeoutMs: number;
  private readonly emit: TypingEmit;

  constructor(timeoutMs: number, emit: TypingEmit) {
    this.timeoutMs = timeoutMs;
    this.emit = emit;
  }

  /** Starts or extends typing; true when this was a transition (broadcast `isTyping: true`). */
  start(conversationId: string, userId: string, socketId: string): boolean {
    const k = key(conversationId, userId);
    const existing = this.entries.get(k);
    if (existing) {
      existing.timer.refresh();
      return false;
    }
    const entry: Entry = {
      conversationId,
      userId,
      socketId,
      timer: setTimeout(() => this.end(conversationId, userId), this.timeoutMs),
    };
    entry.timer.unref();
    this.entries.set(k, entry);
    this.emit(conversationId, userId, true, socketId);
    return true;
  }

  /** Ends typing now; true when the user was typing (broadcast `isTyping: false`). */
  end(conversationId: string, userId: string): boolean {
    const k = key(conversationId, userId);
    const entry = this.entries.get(k);
    if (!entry) return false;
    clearTimeout(entry.timer);
    this.entries.delete(k);
    this.emit(conversationId, userId, false, entry.socketId);
    return true;
  }

  /** Ends the typing that `socketId` started in the conversation (leave). */
  endBySocket(conversationId: string, userId: string, socketId: string): void {
    const entry = this.entries.get(key(conversationId, userId));
    if (entry && entry.socketId === socketId) this.end(conversationId, userId);
  }

  /** Typing entries currently held. */
  get size(): number {
    return this.entries.size;
  }

  close(): void {
    for (const e of this.entries.values()) clearTimeout(e.timer);
    this.entries.clear();
  }
}
