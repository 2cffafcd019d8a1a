/**
 * Which messages this node has delivered to its own sockets, per conversation with sockets here:
 * a contiguous watermark (`upTo`: every seq up to it was delivered or predates the node's interest)
 * and the seqs delivered above it. Every local delivery of a `newMessage` passes `admit` (the
 * adapter's local broadcast, for this node's sends and other nodes' alike), so that
 *
 * - a seq delivered once is never delivered again by this node (a gap repair racing the live
 *   broadcast, a retry that re-broadcasts an original);
 * - a seq past `upTo + 1` shows a gap: messages committed elsewhere whose broadcast never reached
 *   this node (Redis away, a subscriber that fell behind, a node that died between commit and
 *   publish), which the gap repair fills from the store.
 *
 * Memory is bounded by the conversations with sockets here (`forget` when the last one leaves) and,
 * per conversation, by the seqs above a hole, which the repair closes.
 */
interface Track {
  /** The conversation's last seq when tracking began: broadcasts at or below it (committed before, still in flight) pass as they always did. */
  base: number;
  upTo: number;
  above: Set<number>;
}

export class DeliveryLedger {
  private readonly tracks = new Map<string, Track>();

  /**
   * Starts tracking a conversation when a socket here joins it, at its last seq then. Already
   * tracked, nothing changes: seqs between the watermark and `lastSeq` may still be on their way
   * to the sockets already here.
   */
  open(conversationId: string, lastSeq: number): void {
    if (!this.tracks.has(conversationId)) this.tracks.set(conversationId, { base: lastSeq, upTo: lastSeq, above: new Set() });
  }

  forget(conversationId: string): void {
    this.tracks.delete(conversationId);
  }

  isTracked(conversationId: string): boolean {
    return this.tracks.has(conversationId);
  }

  /** Conversations tracked now. */
  conversations(): string[] {
    return [...this.tracks.keys()];
  }

  /** Records a delivery; false when this seq was delivered already (drop it). Untracked conversations always pass. */
  admit(conversationId: string, seq: number): boolean {
    const t = this.tracks.get(conversationId);
    if (!t || seq <= t.base) return true;
    if (seq <= t.upTo || t.above.has(seq)) return false;
    if (seq === t.upTo + 1) {
      t.upTo = seq;
      while (t.above.delete(t.upTo + 1)) t.upTo++;
    } else t.above.add(seq);
    return true;
  }

  /** True when the seq was delivered here (or predates the tracking). */
  delivered(conversationId: string, seq: number): boolean {
    const t = this.tracks.get(conversationId);
    return t !== undefined && (seq <= t.upTo || t.above.has(seq));
  }

  /** The contiguous watermark, when tracked. */
  upTo(conversationId: string): number | undefined {
    return this.tracks.get(conversationId)?.upTo;
  }

  /** True when seqs above the watermark were delivered past a hole. */
  hasGap(conversationId: string): boolean {
    return (this.tracks.get(conversationId)?.above.size ?? 0) > 0;
  }
}
