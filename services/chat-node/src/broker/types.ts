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

/** What a node's typing end found, cluster-wide. */
export interface TypingEnd {
  /** True when no node has the user typing any more: broadcast `isTyping: false`. */
  ended: boolean;
  /** When another node's claim is still live: ask again (`recheck`) after this many ms. */
  recheckInMs?: number;
}

/**
 * Which typing transitions are cluster-wide ones, when one user types in one conversation from
 * sockets on several nodes. Called only on a node's own transitions (and a periodic refresh), never
 * per keystroke.
 */
export interface TypingArbiter {
  /** Refresh a live claim (`begin` again) once it is this old. */
  readonly refreshAfterMs: number;
  /** This node sees the user start typing; true when no other node does (broadcast `true`). */
  begin(conversationId: string, userId: string): Promise<boolean>;
  /** This node sees the user stop typing. */
  end(conversationId: string, userId: string): Promise<TypingEnd>;
  /** Removes claims that lapsed (a node that died mid-typing); `ended` when that emptied the set. */
  recheck(conversationId: string, userId: string): Promise<TypingEnd>;
  /** True when some node's claim on the user's typing is live (a watcher checking a `true` it showed, after an outage). */
  live(conversationId: string, userId: string): Promise<boolean>;
  /** How often `sweep` runs. */
  readonly sweepEveryMs: number;
  /**
   * Ends, cluster-wide, the typing of everyone whose every claim lapsed (the node that held the only
   * claim died): each returned pair is this node's to broadcast `false` for, once.
   */
  sweep(): Promise<{ conversationId: string; userId: string }[]>;
}

/**
 * Presence changes no join or leave on this node stands for: a user goes offline when a dead (or
 * late) peer's sockets lapse, and back online when that late peer's heartbeat returns.
 */
export type PresenceListener = (conversationId: string, userId: string, online: boolean) => void;

export interface Broker {
  readonly kind: "local" | "redis";
  /** The Socket.IO adapter (factory) to install; undefined means Socket.IO's in-memory adapter. */
  readonly adapter: ServerOptions["adapter"] | undefined;
  readonly presence: PresenceTracker;
  /** Undefined on a single node: its own transitions are the cluster's. */
  readonly typing?: TypingArbiter;
  /** Resolves when the broker answers; rejects naming what failed (readiness). */
  ping(): Promise<void>;
  /** Starts background work (heartbeats, sweeps) once the node serves. */
  start(onPresence: PresenceListener): void;
  /** Called each time the broker's connections are all back after an outage (never on a single node): broadcasts may have been missed. */
  onRecovered(listener: () => void): void;
  /** Called each time a connection of the broker drops: broadcasts between nodes are being lost. */
  onDown(listener: () => void): void;
  /**
   * After a recovery: the presence changes this node made while the broker could not tell the
   * other nodes, each with its cluster-wide state now, once (empty on a single node).
   */
  missedPresence(): Promise<{ conversationId: string; userId: string; online: boolean }[]>;
  close(): Promise<void>;
}
