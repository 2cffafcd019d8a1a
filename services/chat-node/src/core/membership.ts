/**
 * Who may use a conversation: members never change after creation, so a per-node cache of member
 * sets cannot go stale. Bounded: the oldest entry goes first.
 */
import { forbidden, notFound } from "../errors.ts";
import type { MessageStore } from "../store/types.ts";

export class Membership {
  private readonly store: MessageStore;
  private readonly cacheSize: number;
  private readonly members = new Map<string, ReadonlySet<string>>();

  constructor(store: MessageStore, cacheSize = 50_000) {
    this.store = store;
    this.cacheSize = cacheSize;
  }

  /** Membership check on the hot path: served from the cache after the first look-up. */
  async require(userId: string, conversationId: string): Promise<void> {
    let members = this.members.get(conversationId);
    if (!members) {
      const c = await this.store.getConversation(conversationId);
      if (!c) throw notFound("unknown conversation");
      members = this.remember(c.id, c.members);
    }
    if (!members.has(userId)) throw forbidden("not a member of this conversation");
  }

  remember(id: string, list: readonly string[]): ReadonlySet<string> {
    const set = new Set(list);
    if (this.members.size >= this.cacheSize) {
      const oldest = this.members.keys().next().value;
      if (oldest !== undefined) this.members.delete(oldest);
    }
    this.members.set(id, set);
    return set;
  }
}
