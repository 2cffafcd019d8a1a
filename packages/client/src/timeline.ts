import type { MessageData } from "@chat/protocol";

/**
 * What the client knows of one conversation: its messages by `id` (the dedupe key) in `seq` order,
 * and the watermark, the highest `seq` up to which nothing is missing. Everything at or below the
 * watermark is either held or deliberately left to history paging; what is above it and not held
 * is a gap that catch-up (`sinceSeq` / `after=`) closes.
 *
 * At most `limit` messages are held: `trim()` drops the oldest beyond it (only at or below the
 * watermark, so a gap is never hidden) and they become history again, paged back by `before=`.
 * Once trimmed, a message at or below the highest trimmed `seq` comes back only as an older page.
 */
export class Timeline {
  readonly conversationId: string;
  private byId = new Map<string, MessageData>();
  private sorted: MessageData[] = [];
  private aboveWatermark = new Set<number>();
  private mark = 0;
  /** True once the watermark has been set from the server (a join ack or a newest page). */
  anchored = false;
  /** False once history paging reached the first message. */
  hasOlder = true;
  /** How many messages `trim()` keeps. */
  limit: number;
  /** The highest `seq` trimmed so far (0: none). */
  private floor = 0;

  constructor(conversationId: string, limit = Number.POSITIVE_INFINITY) {
    this.conversationId = conversationId;
    this.limit = limit;
  }

  /** The highest `seq` up to which nothing is missing: what `sinceSeq` / `after=` ask from. */
  get watermark(): number {
    return this.mark;
  }

  /** The highest `seq` held, or the watermark when higher. */
  get lastSeq(): number {
    const last = this.sorted.at(-1)?.seq ?? 0;
    return Math.max(last, this.mark);
  }

  /** The lowest `seq` held, or undefined when empty: what `before=` pages back from. */
  get oldestSeq(): number | undefined {
    return this.sorted[0]?.seq;
  }

  /** True when a message above the watermark is held, i.e. something between is still missing. */
  get hasGap(): boolean {
    return this.aboveWatermark.size > 0;
  }

  get size(): number {
    return this.sorted.length;
  }

  /** The messages held, ascending by `seq`. The array is a copy. */
  messages(): MessageData[] {
    return [...this.sorted];
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  findByClientMessageId(clientMessageId: string): MessageData | undefined {
    for (let i = this.sorted.length - 1; i >= 0; i--) {
      const m = this.sorted[i];
      if (m?.clientMessageId === clientMessageId) return m;
    }
    return undefined;
  }

  /**
   * Raises the watermark to `seq` (the server said everything up to it exists and is reachable by
   * history). Never lowers it.
   */
  anchor(seq: number): void {
    this.anchored = true;
    if (seq > this.mark) {
      this.mark = seq;
      for (const s of this.aboveWatermark) if (s <= seq) this.aboveWatermark.delete(s);
    }
    this.advance();
  }

  /**
   * Merges messages of this conversation; returns those not held before, ascending by `seq`.
   * `older`: an older page the reader asked for, the only way back for trimmed messages.
   */
  merge(messages: readonly MessageData[], older = false): MessageData[] {
    const added: MessageData[] = [];
    for (const m of messages) {
      if (m.conversationId !== this.conversationId || this.byId.has(m.id)) continue;
      if (!older && m.seq <= this.floor) continue;
      this.byId.set(m.id, m);
      added.push(m);
      if (m.seq > this.mark) this.aboveWatermark.add(m.seq);
    }
    if (added.length === 0) return added;
    added.sort((a, b) => a.seq - b.seq);
    const last = this.sorted.at(-1);
    const first = added[0];
    if (last && first && first.seq < last.seq) {
      this.sorted.push(...added);
      this.sorted.sort((a, b) => a.seq - b.seq);
    } else {
      this.sorted.push(...added);
    }
    this.advance();
    return added;
  }

  /**
   * Drops the oldest messages beyond `limit`, never one above the watermark; returns them,
   * ascending by `seq`. What is dropped can be paged back (`hasOlder` turns true).
   */
  trim(): MessageData[] {
    let n = 0;
    while (this.sorted.length - n > this.limit && (this.sorted[n]?.seq ?? Infinity) <= this.mark) n++;
    if (n === 0) return [];
    const dropped = this.sorted.splice(0, n);
    for (const m of dropped) this.byId.delete(m.id);
    this.floor = Math.max(this.floor, dropped.at(-1)!.seq);
    this.hasOlder = true;
    return dropped;
  }

  private advance(): void {
    while (this.aboveWatermark.has(this.mark + 1)) {
      this.mark += 1;
      this.aboveWatermark.delete(this.mark);
    }
  }
}
