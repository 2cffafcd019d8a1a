/** A stored message, as broadcast in `newMessage` and returned by REST (CONTRACT.md §3). */
export interface MessageData {
  /** Unique cluster-wide. */
  id: string;
  conversationId: string;
  /** The token's `sub`. */
  senderId: string;
  message: string;
  /** ISO 8601 UTC with milliseconds, assigned by the server. */
  timestamp: string;
  /** 1, 2, 3, ... per conversation: no gap, no repeat. */
  seq: number;
  clientMessageId?: string;
}

/** A conversation (CONTRACT.md §2). */
export interface Conversation {
  id: string;
  title: string;
  members: string[];
  createdAt: string;
  /** Highest `seq` stored; 0 when empty. */
  lastSeq: number;
  /** Time of the newest message, or `createdAt`. */
  lastActivityAt: string;
}

/** Server-to-client `typing`. */
export interface TypingEvent {
  conversationId: string;
  userId: string;
  isTyping: boolean;
}

/** Server-to-client `presence`. */
export interface PresenceEvent {
  conversationId: string;
  userId: string;
  online: boolean;
}

/** A history page. */
export interface MessagePage {
  messages: MessageData[];
  hasMore: boolean;
}
