/**
 * The broker seam: what a node shares with its peers. `LocalBroker` (in-process, single node)
 * and `RedisBroker` (cluster) implement it.
 */
import type { ServerOptions } from "socket.io";

/** Counts each user's sockets per conversation, across every node the broker spans. */
export interface PresenceTracker {
  /** Records a socket of the user in the conversation; true when it is the user's first one. */
  join(conversationId: string, userId: string, socketId: string): Promise<boolean>;
  /** Removes that socket; true when it was the user's last one. */
  leave(conversationId: string, userId: string, socketId: string): Promise<boolean>;
  /** Users with at least one live socket in the conversation. */
  online(conversationId: string): Promise<string[]>;
}

/** Called when a user goes offline without a leave seen by this node (a dead peer's sockets expiring). */
export type OfflineListener = (conversationId: string, userId: string) => void;

export interface Broker {
  readonly kind: "local" | "redis";
  /** The Socket.IO adapter (factory) to install; undefined means Socket.IO's in-memory adapter. */
  readonly adapter: ServerOptions["adapter"] | undefined;
  readonly presence: PresenceTracker;
  /** Resolves when the broker answers; rejects naming what failed (readiness). */
  ping(): Promise<void>;
  /** Starts background work (heartbeats, sweeps) once the node serves. */
  start(onOffline: OfflineListener): void;
  close(): Promise<void>;
}
