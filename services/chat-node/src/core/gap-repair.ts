/**
 * Gap repair on the node, not the client: messages committed in a conversation while this node was
 * cut off from its peers' broadcasts (Redis away, a subscriber that fell behind, a node that died
 * between its commit and its publish) are delivered to this node's sockets from the store, in seq
 * order, once per socket. A client written as the seed describes, which never fetches history by
 * itself, then ends with every message.
 *
 * Two triggers: a delivery past a hole in the ledger (after a short grace, since two nodes'
 * broadcasts may cross), and the broker's recovery after an outage (every tracked conversation).
 */
import { Limits } from "@chat/protocol";
import type { MessageStore } from "../store/types.ts";
import type { DeliveryLedger } from "./delivery-ledger.ts";
import type { Rooms } from "./ports.ts";

export interface GapRepairDeps {
  ledger: DeliveryLedger;
  store: MessageStore;
  rooms: Rooms;
  /** How long a hole may be left to the live broadcasts before the store fills it. */
  graceMs: number;
  onRepaired(count: number): void;
  onError(err: unknown, what: string): void;
}

/** Pages one repair reads at most per conversation (200 messages each); the next trigger goes on. */
const MAX_PAGES = 10;

export class GapRepair {
  private readonly d: GapRepairDeps;
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private readonly running = new Set<string>();
  private closed = false;

  constructor(d: GapRepairDeps) {
    this.d = d;
  }

  /** A hole was seen in the conversation: repair it after the grace, once however many deliveries show it. */
  notice(conversationId: string, delayMs = this.d.graceMs): void {
    if (this.closed || this.pending.has(conversationId)) return;
    const timer = setTimeout(() => {
      this.pending.delete(conversationId);
      void this.repair(conversationId);
    }, delayMs);
    timer.unref();
    this.pending.set(conversationId, timer);
  }

  /** After an outage: every conversation with sockets here, at once and once more after the grace (a publish racing the resubscription). */
  all(): void {
    for (const c of this.d.ledger.conversations()) void this.repair(c);
    for (const c of this.d.ledger.conversations()) this.notice(c, Math.max(this.d.graceMs, 1000));
  }

  async repair(conversationId: string): Promise<void> {
    if (this.closed || this.running.has(conversationId)) return;
    const { ledger, rooms } = this.d;
    if (rooms.localSessions(conversationId).length === 0) return ledger.forget(conversationId);
    this.running.add(conversationId);
    let delivered = 0;
    try {
      let after = ledger.upTo(conversationId);
      for (let page = 0; after !== undefined && page < MAX_PAGES; page++) {
        const { messages, hasMore } = await this.d.store.listMessages(conversationId, { after, limit: Limits.pageMax });
        // Sessions read per page: one that joined meanwhile holds what its join answered.
        const sessions = rooms.localSessions(conversationId);
        for (const m of messages) {
          if (!ledger.admit(conversationId, m.seq)) continue;
          const to = sessions.filter((s) => (s.joinedSeq?.get(conversationId) ?? 0) < m.seq);
          if (to.length > 0) rooms.deliverLocally(to, m);
          delivered++;
        }
        after = messages.at(-1)?.seq;
        if (!hasMore) break;
      }
    } catch (err) {
      this.d.onError(err, "gap repair");
      this.notice(conversationId, Math.max(this.d.graceMs, 1000));
    } finally {
      this.running.delete(conversationId);
    }
    if (delivered > 0) this.d.onRepaired(delivered);
  }

  close(): void {
    this.closed = true;
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
  }
}
