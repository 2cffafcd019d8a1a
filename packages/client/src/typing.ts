/**
 * Turns keystrokes into few `typing` events: the first keystroke sends one at once, then at most one
 * per `intervalMs` while typing goes on (the server only extends its window, CONTRACT.md §4), and
 * one `stopTyping` when the input empties or the message is sent.
 */
export interface TypingSink {
  typing(conversationId: string): void;
  stopTyping(conversationId: string): void;
}

export class TypingThrottle {
  private readonly intervalMs: number;
  private readonly sink: TypingSink;
  private readonly now: () => number;
  /** Per conversation: when the last `typing` went out, while no `stopTyping` followed. */
  private lastSent = new Map<string, number>();

  constructor(sink: TypingSink, intervalMs: number, now: () => number = Date.now) {
    this.sink = sink;
    this.intervalMs = intervalMs;
    this.now = now;
  }

  /** Call on every change of the input box with its new value. */
  input(conversationId: string, value: string): void {
    if (value.trim() === "") {
      this.stop(conversationId);
      return;
    }
    const t = this.now();
    const last = this.lastSent.get(conversationId);
    if (last !== undefined && t - last < this.intervalMs) return;
    this.lastSent.set(conversationId, t);
    this.sink.typing(conversationId);
  }

  /** Ends typing at once, if a `typing` went out since the last stop. */
  stop(conversationId: string): void {
    if (!this.lastSent.delete(conversationId)) return;
    this.sink.stopTyping(conversationId);
  }

  /** Forgets every conversation without telling the server (it ends typing on disconnect itself). */
  reset(): void {
    this.lastSent.clear();
  }
}
