/**
 * The use cases, independent of transport: Socket.IO handlers and REST routes both call these
 * with an authenticated user id and an already-validated payload. Broadcasting is the caller's,
 * since only a stored message may be broadcast and a duplicate must not be.
 */
import { randomUUID } from "node:crypto";
import { ErrorCode, Limits, type Conversation, type MessagePage } from "@chat/protocol";
import { AppError, forbidden, notFound } from "../errors.ts";
import type { GroupCommitter } from "../store/group-commit.ts";
import type { AppendResult, MessageStore } from "../store/types.ts";

export interface ChatServiceOptions {
  store: MessageStore;
  committer: GroupCommitter;
  maxMessageLength: number;
  /** Conversations whose membership is cached; members never change after creation. */
  cacheSize?: number;
}

export interface SendInput {
  conversationId: string;
  message: string;
  clientMessageId?: string | undefined;
}

export interface JoinResult {
  conversationId: string;
  lastSeq: number;
  missed?: AppendResult["message"][];
  hasMore?: boolean;
}

export class ChatService {
  private readonly store: MessageStore;
  private readonly committer: GroupCommitter;
  private readonly maxMessageLength: number;
  private readonly cacheSize: number;
  private readonly members = new Map<string, ReadonlySet<string>>();

  constructor(opts: ChatServiceOptions) {
    this.store = opts.store;
    this.committer = opts.committer;
    this.maxMessageLength = opts.maxMessageLength;
    this.cacheSize = opts.cacheSize ?? 50_000;
  }

  async createConversation(userId: string, input: { members: string[]; title?: string | undefined }): Promise<Conversation> {
    const members = [...new Set([userId, ...input.members])];
    if (members.length > Limits.membersMax) throw new AppError(ErrorCode.INVALID_PAYLOAD, `members: at most ${Limits.membersMax}`);
    const conversation = await this.store.createConversation({
      id: randomUUID(),
      title: input.title ?? "",
      members,
      createdAt: new Date().toISOString(),
    });
    this.remember(conversation.id, conversation.members);
    return conversation;
  }

  /** The user's conversations, newest activity first, at most `limit` (1 to Limits.conversationsMax). */
  listConversations(userId: string, limit: number = Limits.conversationsDefault): Promise<Conversation[]> {
    if (!Number.isInteger(limit) || limit < 1 || limit > Limits.conversationsMax) {
      throw new AppError(ErrorCode.INVALID_PAYLOAD, `limit: from 1 to ${Limits.conversationsMax}`);
    }
    return this.store.listConversations(userId, limit);
  }

  /** The conversation, when it exists and the user is a member (NOT_FOUND / FORBIDDEN otherwise). */
  async getConversation(userId: string, conversationId: string): Promise<Conversation> {
    const c = await this.store.getConversation(conversationId);
    if (!c) throw notFound("unknown conversation");
    this.remember(c.id, c.members);
    if (!c.members.includes(userId)) throw forbidden("not a member of this conversation");
    return c;
  }

  /** Membership check on the hot path: served from the cache after the first look-up. */
  async requireMember(userId: string, conversationId: string): Promise<void> {
    let members = this.members.get(conversationId);
    if (!members) {
      const c = await this.store.getConversation(conversationId);
      if (!c) throw notFound("unknown conversation");
      members = this.remember(c.id, c.members);
    }
    if (!members.has(userId)) throw forbidden("not a member of this conversation");
  }

  private remember(id: string, list: string[]): ReadonlySet<string> {
    const set = new Set(list);
    if (this.members.size >= this.cacheSize) {
      const oldest = this.members.keys().next().value;
      if (oldest !== undefined) this.members.delete(oldest);
    }
    this.members.set(id, set);
    return set;
  }

  /** Validates length and membership, then stores through group commit; resolves once committed. */
  async sendMessage(userId: string, input: SendInput): Promise<AppendResult> {
    if (input.message.length > this.maxMessageLength) {
      throw new AppError(ErrorCode.PAYLOAD_TOO_LARGE, `message: at most ${this.maxMessageLength} characters`);
    }
    await this.requireMember(userId, input.conversationId);
    return this.committer.append({
      id: randomUUID(),
      conversationId: input.conversationId,
      senderId: userId,
      message: input.message,
      timestamp: new Date().toISOString(),
      ...(input.clientMessageId !== undefined ? { clientMessageId: input.clientMessageId } : {}),
    });
  }

  async history(userId: string, conversationId: string, q: { limit?: number; before?: number; after?: number }): Promise<MessagePage> {
    await this.requireMember(userId, conversationId);
    const limit = q.limit ?? Limits.pageDefault;
    if (!Number.isInteger(limit) || limit < 1 || limit > Limits.pageMax) {
      throw new AppError(ErrorCode.INVALID_PAYLOAD, `limit: from 1 to ${Limits.pageMax}`);
    }
    return this.store.listMessages(conversationId, { limit, before: q.before, after: q.after });
  }

  /** The join answer: the conversation's last seq and, with `sinceSeq`, what was missed. */
  async catchUp(userId: string, conversationId: string, sinceSeq: number | undefined): Promise<JoinResult> {
    const c = await this.getConversation(userId, conversationId);
    const result: JoinResult = { conversationId, lastSeq: c.lastSeq };
    if (sinceSeq !== undefined) {
      const page = await this.store.listMessages(conversationId, { after: sinceSeq, limit: Limits.missedMax });
      result.missed = page.messages;
      result.hasMore = page.hasMore;
      const newest = page.messages.at(-1);
      if (newest && newest.seq > result.lastSeq) result.lastSeq = newest.seq;
    }
    return result;
  }
}
