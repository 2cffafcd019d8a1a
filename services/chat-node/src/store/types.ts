/**
 * The store seam. Use cases talk to a MessageStore and nothing else; SQLite (embedded default)
 * and MongoDB implement it, and one contract suite (test/store-contract.test.ts) runs against each.
 */
import type { Conversation, MessageData, MessagePage } from "@chat/protocol";

/** A message before the store gives it its `seq`. */
export interface NewMessage {
  id: string;
  conversationId: string;
  senderId: string;
  message: string;
  /** ISO 8601, assigned by the node when the send is accepted. */
  timestamp: string;
  clientMessageId?: string;
}

/** The stored message; `duplicate` when `(conversationId, senderId, clientMessageId)` already existed. */
export interface AppendResult {
  message: MessageData;
  duplicate: boolean;
}

export interface NewConversation {
  id: string;
  title: string;
  members: string[];
  createdAt: string;
}

export interface HistoryRange {
  /** Only messages with seq < before (newest first page backward). */
  before?: number;
  /** Only messages with seq > after (catch-up). */
  after?: number;
  limit: number;
}

/**
 * Raised by a store when its database cannot be reached or refuses the write: the caller answers
 * UNAVAILABLE and nothing is acknowledged.
 */
export class StoreUnavailableError extends Error {
  override name = "StoreUnavailableError";
}

export interface MessageStore {
  readonly kind: "sqlite" | "mongodb";
  /** Opens connections and creates schema and indexes, idempotently. */
  init(): Promise<void>;
  close(): Promise<void>;
  /** Resolves when the database answers; rejects otherwise (readiness). */
  ping(): Promise<void>;

  createConversation(input: NewConversation): Promise<Conversation>;
  getConversation(id: string): Promise<Conversation | null>;
  /** The user's conversations, newest activity first. */
  listConversations(userId: string, limit: number): Promise<Conversation[]>;

  /**
   * Stores a batch durably, in one transaction or one insertMany, and resolves only once every
   * message is committed. Results are in input order. Each message gets the next `seq` of its
   * conversation; a repeated idempotency key (in the store or earlier in the same batch) yields the
   * stored original with `duplicate: true` and consumes no `seq`. Conversations are known to exist.
   * Rejects as a whole (nothing acknowledged) when the database fails.
   */
  appendBatch(batch: readonly NewMessage[]): Promise<AppendResult[]>;

  /** Messages ascending by seq; `hasMore` when more exist beyond the page in the paging direction. */
  listMessages(conversationId: string, range: HistoryRange): Promise<MessagePage>;
}
