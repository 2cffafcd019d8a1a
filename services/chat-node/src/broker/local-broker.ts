/**
 * The in-process twin of the Redis broker, for a single node (no REDIS_URL): Socket.IO's default
 * in-memory adapter, and presence counted in a map.
 */
import type { Broker, PresenceTracker } from "./types.ts";

export class LocalPresence implements PresenceTracker {
  private readonly byConversation = new Map<string, Map<string, Set<string>>>();

  async join(conversationId: string, userId: string, socketId: string): Promise<boolean> {
    let users = this.byConversation.get(conversationId);
    if (!users) this.byConversation.set(conversationId, (users = new Map()));
    let sockets = users.get(userId);
    if (!sockets) users.set(userId, (sockets = new Set()));
    const before = sockets.size;
    sockets.add(socketId);
    return before === 0;
  }

  async leave(conversationId: string, userId: string, socketId: string): Promise<boolean> {
    const users = this.byConversation.get(conversationId);
    const sockets = users?.get(userId);
    if (!users || !sockets || !sockets.delete(socketId)) return false;
    if (sockets.size > 0) return false;
    users.delete(userId);
    if (users.size === 0) this.byConversation.delete(conversationId);
    return true;
  }

  async online(conversationId: string): Promise<string[]> {
    return [...(this.byConversation.get(conversationId)?.keys() ?? [])].sort();
  }
}

export class LocalBroker implements Broker {
  readonly kind = "local" as const;
  readonly adapter = undefined;
  readonly presence = new LocalPresence();
  async ping(): Promise<void> {}
  start(): void {}
  onRecovered(): void {}
  onDown(): void {}
  async missedPresence(): Promise<{ conversationId: string; userId: string; online: boolean }[]> {
    return [];
  }
  async close(): Promise<void> {}
}
