/**
 * What the chat core needs from the outside, as narrow interfaces: the core imports neither
 * socket.io nor fastify. The Socket.IO transport implements them over rooms and the adapter
 * (`transport/socket/fanout.ts`); tests can implement them in a few lines.
 */
import type { MessageData } from "@chat/protocol";

/** One connection of a user (a socket), as the core keeps it. */
export interface Session {
  readonly id: string;
  readonly userId: string;
  /** Conversations this session counts as present in (made on its first join). */
  joined?: Set<string>;
  /** Conversations this session sent `typing` in, joined or not: its disconnect ends each. */
  typed?: Set<string>;
  /** The last seq each joined conversation had when this session joined it (it holds what came before, or chose not to). */
  joinedSeq?: Map<string, number>;
}

/** Events to clients, delivered to every node's sockets of a conversation's room. */
export interface Fanout {
  /** A stored message to the room; `origin`, the sending session, gets it too when it has not joined (the seed's confirmation). */
  newMessage(message: MessageData, origin?: Session): void;
  /**
   * A typing transition to the room, but not to `exceptSessionId` (the typist's own socket: the
   * seed's `socket.to(room)`); `localOnly`: to this node's sockets only (ending a `true` whose
   * `false` an outage lost).
   */
  typing(conversationId: string, userId: string, isTyping: boolean, exceptSessionId?: string, localOnly?: boolean): void;
  /** A presence transition to the room; `localOnly`: to this node's sockets only. */
  presence(conversationId: string, userId: string, online: boolean, localOnly?: boolean): void;
}

/** Room membership of sessions, on every node's view. */
export interface Rooms {
  /** Puts the session in the conversation's room; false when the session has closed meanwhile. */
  join(session: Session, conversationId: string): Promise<boolean>;
  leave(session: Session, conversationId: string): Promise<void>;
  /** This node's sessions in the conversation's room. */
  localSessions(conversationId: string): Session[];
  /** A message to these sessions of this node only, outside the room broadcast (gap repair). */
  deliverLocally(sessions: readonly Session[], message: MessageData): void;
}

/** A send seen by one node, for the others: each ends that user's typing from before `at`. */
export interface SentSignal {
  conversationId: string;
  userId: string;
  /** Wall-clock ms (`performance.timeOrigin + performance.now()`) when the send was received. */
  at: number;
}

/** A presence state another node's sockets may not have heard (it changed during an outage). */
export interface PresenceSignal {
  conversationId: string;
  userId: string;
  online: boolean;
}

/** Node-to-node signals (Socket.IO's `serverSideEmit` through the adapter in a cluster). */
export interface Peers {
  /** Tells every other node about these sends; a no-op on a single node. */
  sent(signals: SentSignal[]): void;
  /** Called with the sends other nodes saw. */
  onSent(listener: (signals: SentSignal[]) => void): void;
  /** Tells every other node the presence its sockets missed; a no-op on a single node. */
  presenceMissed(signals: PresenceSignal[]): void;
  onPresenceMissed(listener: (signals: PresenceSignal[]) => void): void;
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across the processes of a host. */
export const wallNow = (): number => performance.timeOrigin + performance.now();
