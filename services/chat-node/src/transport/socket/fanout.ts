/**
 * The core's ports over Socket.IO: what the node emits to rooms (`Fanout`), room membership
 * (`Rooms`) and node-to-node signals (`Peers`, Socket.IO's `serverSideEmit`). Emits go through the
 * adapter, so with Redis they reach every node's sockets.
 */
import type { Server, Socket } from "socket.io";
import { ServerEvent, type ClientToServerEvents, type MessageData, type ServerToClientEvents } from "@chat/protocol";
import type { Metrics } from "../../metrics.ts";
import type { Fanout, Peers, PresenceSignal, Rooms, SentSignal, Session } from "../../core/ports.ts";
import { roomOf } from "./rooms.ts";
import { corkUntilTurnEnds } from "./patches/cork.ts";

/** Events between nodes (Socket.IO's `serverSideEmit`). */
export interface InterServerEvents {
  sent(signals: SentSignal[]): void;
  presenceMissed(signals: PresenceSignal[]): void;
}

/** What the node keeps on each socket (`socket.data`): the core's session, and the transport's own. */
export interface SocketSession extends Session {
  /** When the handshake's token expires (ms since the epoch), if it does. */
  expiresAt?: number;
}

export type ChatServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketSession>;
export type ChatSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketSession>;

export class SocketFanout implements Fanout, Rooms, Peers {
  private readonly io: ChatServer;
  private readonly metrics: Metrics;
  /** False on a single node: no peers to tell (the in-memory adapter has no serverSideEmit). */
  private readonly clustered: boolean;

  constructor(io: ChatServer, metrics: Metrics, clustered: boolean) {
    this.io = io;
    this.metrics = metrics;
    this.clustered = clustered;
  }

  private socketOf(session: Session): ChatSocket | undefined {
    return this.io.of("/").sockets.get(session.id);
  }

  newMessage(message: MessageData, origin?: Session): void {
    const room = roomOf(message.conversationId);
    const sender = origin && this.socketOf(origin);
    // The sender's own newMessage and its acknowledgement (answered in this same turn) leave in one system call.
    if (sender) corkUntilTurnEnds(sender);
    this.io.to(room).emit(ServerEvent.newMessage, message);
    if (sender && !sender.rooms.has(room)) sender.emit(ServerEvent.newMessage, message);
  }

  typing(conversationId: string, userId: string, isTyping: boolean, exceptSessionId = "", localOnly = false): void {
    (localOnly ? this.io.local : this.io).to(roomOf(conversationId)).except(exceptSessionId).emit(ServerEvent.typing, { conversationId, userId, isTyping });
    this.metrics.typingBroadcasts.inc({ state: isTyping ? "start" : "stop" });
  }

  presence(conversationId: string, userId: string, online: boolean, localOnly = false): void {
    (localOnly ? this.io.local : this.io).to(roomOf(conversationId)).emit(ServerEvent.presence, { conversationId, userId, online });
    this.metrics.presenceChanges.inc({ state: online ? "online" : "offline" });
  }

  async join(session: Session, conversationId: string): Promise<boolean> {
    const socket = this.socketOf(session);
    if (!socket?.connected) return false;
    await socket.join(roomOf(conversationId));
    return true;
  }

  async leave(session: Session, conversationId: string): Promise<void> {
    await this.socketOf(session)?.leave(roomOf(conversationId));
  }

  localSessions(conversationId: string): Session[] {
    const ids = this.io.of("/").adapter.rooms.get(roomOf(conversationId));
    const sockets = this.io.of("/").sockets;
    const out: Session[] = [];
    for (const id of ids ?? []) {
      const s = sockets.get(id);
      if (s?.connected) out.push(s.data);
    }
    return out;
  }

  deliverLocally(sessions: readonly Session[], message: MessageData): void {
    for (const session of sessions) this.socketOf(session)?.emit(ServerEvent.newMessage, message);
  }

  sent(signals: SentSignal[]): void {
    if (this.clustered) this.io.serverSideEmit("sent", signals);
  }

  onSent(listener: (signals: SentSignal[]) => void): void {
    this.io.on("sent", (signals: unknown) => {
      // From another node of this cluster, through Redis: still checked, as any input.
      if (Array.isArray(signals)) listener(signals.filter(isSentSignal));
    });
  }

  presenceMissed(signals: PresenceSignal[]): void {
    if (this.clustered && signals.length > 0) this.io.serverSideEmit("presenceMissed", signals);
  }

  onPresenceMissed(listener: (signals: PresenceSignal[]) => void): void {
    this.io.on("presenceMissed", (signals: unknown) => {
      if (Array.isArray(signals)) listener(signals.filter(isPresenceSignal));
    });
  }
}

function isPresenceSignal(s: unknown): s is PresenceSignal {
  if (typeof s !== "object" || s === null) return false;
  const v = s as Record<string, unknown>;
  return typeof v.conversationId === "string" && typeof v.userId === "string" && typeof v.online === "boolean";
}

function isSentSignal(s: unknown): s is SentSignal {
  if (typeof s !== "object" || s === null) return false;
  const v = s as Record<string, unknown>;
  return typeof v.conversationId === "string" && typeof v.userId === "string" && typeof v.at === "number";
}
