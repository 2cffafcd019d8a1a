/**
 * The chat core: every use case of the contract, independent of transport. Socket.IO handlers and
 * REST routes parse their input against the protocol's schemas, then call these with the
 * authenticated user (or session) and answer with what they return; a socket send and a REST send
 * are the same call. The core checks the rules (claimed identity, length, membership), stores
 * through group commit, decides the duplicate rule and the metrics, and fans out through `Fanout`:
 * only a stored message is broadcast; a duplicate younger than REBROADCAST_WINDOW_MS is broadcast
 * again, and the delivery ledger passes it only to sockets it never reached (docs/ARCHITECTURE.md).
 */
import { randomUUID } from "node:crypto";
import { ErrorCode, Limits, type Conversation, type MessageData, type MessagePage } from "@chat/protocol";
import { AppError, forbidden, notFound } from "../errors.ts";
import type { Metrics } from "../metrics.ts";
import type { GroupCommitter } from "../store/group-commit.ts";
import type { AppendResult, MessageStore } from "../store/types.ts";
import type { Broker } from "../broker/types.ts";
import { Membership } from "./membership.ts";
import { TypingTracker } from "./typing.ts";
import { DeliveryLedger } from "./delivery-ledger.ts";
import { GapRepair } from "./gap-repair.ts";
import { TypingView } from "./typing-view.ts";
import { wallNow, type Fanout, type Peers, type Rooms, type SentSignal, type Session } from "./ports.ts";

export interface ChatCoreDeps {
  store: MessageStore;
  committer: GroupCommitter;
  broker: Broker;
  fanout: Fanout;
  rooms: Rooms;
  peers: Peers;
  metrics: Metrics;
  maxMessageLength: number;
  typingTimeoutMs: number;
  /** Failures of background work (presence on disconnect, gap repair). */
  onError(err: unknown, what: string): void;
  /** How long a hole in a conversation's deliveries is left to the live broadcasts before the store fills it (default 500 ms). */
  gapGraceMs?: number;
}

/** A retried send whose original is younger than this is broadcast again: its first attempt may have been stored but never broadcast (an unknown commit outcome answered UNAVAILABLE). Each node delivers it only where it never did. */
const REBROADCAST_WINDOW_MS = 5 * 60_000;
/**
 * After Redis is back, how long a node waits before telling the others the presence changes Redis
 * did not hear. Every node's subscriber comes back on its own reconnect (ioredis retries at most a
 * second apart): a signal sent at once can reach a peer that is not listening yet, and is lost.
 */
const PRESENCE_RECONCILE_DELAY_MS = 2000;

export interface SendInput {
  conversationId: string;
  message: string;
  clientMessageId?: string | undefined;
  /** The seed's field: when present it must be the authenticated user. */
  senderId?: string | undefined;
}

export interface JoinResult {
  conversationId: string;
  lastSeq: number;
  missed?: MessageData[];
  hasMore?: boolean;
}

export class ChatCore {
  private readonly d: ChatCoreDeps;
  private readonly membership: Membership;
  readonly typingState: TypingTracker;
  /** What this node delivered to its sockets, per conversation: the transport's delivery filter asks it (`admitDelivery`). */
  private readonly ledger = new DeliveryLedger();
  private readonly repair: GapRepair;
  /** The typing this node's sockets were shown, whoever's: ended here when an outage lost its `false`. */
  private readonly typingView: TypingView;
  /** Sends of this turn, told to the other nodes in one signal at its end. */
  private sentThisTurn: SentSignal[] = [];

  constructor(d: ChatCoreDeps) {
    this.d = d;
    this.membership = new Membership(d.store);
    this.typingState = new TypingTracker(d.typingTimeoutMs, (c, u, t, except) => d.fanout.typing(c, u, t, except), d.broker.typing);
    d.peers.onSent((signals) => {
      for (const s of signals) this.typingState.end(s.conversationId, s.userId, s.at);
    });
    this.repair = new GapRepair({
      ledger: this.ledger,
      store: d.store,
      rooms: d.rooms,
      graceMs: d.gapGraceMs ?? 500,
      onRepaired: (n) => d.metrics.gapRepaired.inc(n),
      onError: d.onError,
    });
    this.typingView = new TypingView(
      d.typingTimeoutMs,
      (c, u) => d.fanout.typing(c, u, false, "", true),
      (c, u) => this.typingState.has(c, u),
    );
    d.broker.onDown(() => this.typingView.down());
    d.peers.onPresenceMissed((signals) => {
      for (const p of signals) d.fanout.presence(p.conversationId, p.userId, p.online, true);
    });
    d.broker.onRecovered(() => {
      this.repair.all();
      // The state is read when the signal goes, so it is the cluster-wide state then.
      setTimeout(() => {
        d.broker.missedPresence().then(
          (changes) => d.peers.presenceMissed(changes),
          (err: unknown) => d.onError(err, "presence reconciliation"),
        );
      }, PRESENCE_RECONCILE_DELAY_MS).unref();
      this.typingState.reclaim();
      this.typingView.recovered(d.broker.typing, 1000);
    });
  }

  /** A typing transition being delivered to this node's sockets (any node's). */
  observeTyping(conversationId: string, userId: string, isTyping: boolean): void {
    this.typingView.observe(conversationId, userId, isTyping);
  }

  /**
   * Every `newMessage` about to reach this node's sockets of a conversation room passes here (this
   * node's broadcasts and other nodes'): false drops a seq already delivered; a seq past a hole
   * starts the gap repair.
   */
  admitDelivery(conversationId: string, seq: number): boolean {
    if (!this.ledger.admit(conversationId, seq)) return false;
    if (this.ledger.hasGap(conversationId)) this.repair.notice(conversationId);
    return true;
  }

  /** Starts background work once the node serves: presence changes no join or leave here stands for. */
  start(): void {
    this.d.broker.start((conversationId, userId, online) => this.d.fanout.presence(conversationId, userId, online));
  }

  // Conversations (REST).

  async createConversation(userId: string, input: { members: string[]; title?: string | undefined }): Promise<Conversation> {
    const members = [...new Set([userId, ...input.members])];
    if (members.length > Limits.membersMax) throw new AppError(ErrorCode.INVALID_PAYLOAD, `members: at most ${Limits.membersMax}`);
    const conversation = await this.d.store.createConversation({ id: randomUUID(), title: input.title ?? "", members, createdAt: new Date().toISOString() });
    this.membership.remember(conversation.id, conversation.members);
    return conversation;
  }

  /** The user's conversations, newest activity first, at most `limit` (1 to Limits.conversationsMax). */
  listConversations(userId: string, limit: number = Limits.conversationsDefault): Promise<Conversation[]> {
    if (!Number.isInteger(limit) || limit < 1 || limit > Limits.conversationsMax) {
      throw new AppError(ErrorCode.INVALID_PAYLOAD, `limit: from 1 to ${Limits.conversationsMax}`);
    }
    return this.d.store.listConversations(userId, limit);
  }

  /** The conversation, when it exists and the user is a member (NOT_FOUND / FORBIDDEN otherwise). */
  async getConversation(userId: string, conversationId: string): Promise<Conversation> {
    const c = await this.d.store.getConversation(conversationId);
    if (!c) throw notFound("unknown conversation");
    this.membership.remember(c.id, c.members);
    if (!c.members.includes(userId)) throw forbidden("not a member of this conversation");
    return c;
  }

  requireMember(userId: string, conversationId: string): Promise<void> {
    return this.membership.require(userId, conversationId);
  }

  async history(userId: string, conversationId: string, q: { limit?: number | undefined; before?: number | undefined; after?: number | undefined }): Promise<MessagePage> {
    await this.requireMember(userId, conversationId);
    const limit = q.limit ?? Limits.pageDefault;
    if (!Number.isInteger(limit) || limit < 1 || limit > Limits.pageMax) throw new AppError(ErrorCode.INVALID_PAYLOAD, `limit: from 1 to ${Limits.pageMax}`);
    return this.d.store.listMessages(conversationId, { limit, before: q.before, after: q.after });
  }

  async presence(userId: string, conversationId: string): Promise<{ conversationId: string; online: string[] }> {
    await this.requireMember(userId, conversationId);
    return { conversationId, online: await this.d.broker.presence.online(conversationId) };
  }

  // Messages.

  /**
   * Stores a message, then (a new one only) broadcasts it and ends its sender's typing on every
   * node; resolves once committed. `receivedAt` (wall-clock ms) is when the send arrived: typing
   * refreshed after it belongs to the next message and is left alone.
   */
  async send(userId: string, input: SendInput, origin?: Session, receivedAt: number = wallNow()): Promise<AppendResult> {
    if (input.senderId !== undefined && input.senderId !== userId) throw forbidden("senderId is not the authenticated user");
    if (input.message.length > this.d.maxMessageLength) {
      throw new AppError(ErrorCode.PAYLOAD_TOO_LARGE, `message: at most ${this.d.maxMessageLength} characters`);
    }
    await this.requireMember(userId, input.conversationId);
    const result = await this.d.committer.append({
      id: randomUUID(),
      conversationId: input.conversationId,
      senderId: userId,
      message: input.message,
      timestamp: new Date().toISOString(),
      ...(input.clientMessageId !== undefined ? { clientMessageId: input.clientMessageId } : {}),
    });
    if (result.duplicate) {
      this.d.metrics.messagesDuplicate.inc();
      if (Date.now() - Date.parse(result.message.timestamp) < REBROADCAST_WINDOW_MS) this.d.fanout.newMessage(result.message);
      return result;
    }
    this.d.metrics.messagesStored.inc();
    this.d.fanout.newMessage(result.message, origin);
    this.typingState.end(input.conversationId, userId, receivedAt);
    this.tellPeers({ conversationId: input.conversationId, userId, at: receivedAt });
    return result;
  }

  private tellPeers(signal: SentSignal): void {
    if (this.sentThisTurn.push(signal) > 1) return;
    setImmediate(() => {
      const signals = this.sentThisTurn;
      this.sentThisTurn = [];
      this.d.peers.sent(signals);
    });
  }

  // Rooms, typing, presence (sessions).

  /** Joins the room on every node's view, then answers the conversation's last seq and, with `sinceSeq`, what was missed. */
  async join(session: Session, input: { conversationId: string; sinceSeq?: number | undefined }): Promise<JoinResult> {
    const { conversationId, sinceSeq } = input;
    const { userId } = session;
    await this.requireMember(userId, conversationId);
    // Join before reading the catch-up, so no message falls between the two (a message in both
    // `missed` and a live `newMessage` is deduplicated by the client on `id`).
    if (!(await this.d.rooms.join(session, conversationId))) throw new AppError(ErrorCode.UNAVAILABLE, "socket closed");
    if (!session.joined?.has(conversationId)) {
      (session.joined ??= new Set()).add(conversationId);
      if (await this.d.broker.presence.join(conversationId, userId, session.id)) this.d.fanout.presence(conversationId, userId, true);
    }
    const c = await this.getConversation(userId, conversationId);
    this.ledger.open(conversationId, c.lastSeq);
    const result: JoinResult = { conversationId, lastSeq: c.lastSeq };
    if (sinceSeq !== undefined) {
      const page = await this.d.store.listMessages(conversationId, { after: sinceSeq, limit: Limits.missedMax });
      result.missed = page.messages;
      result.hasMore = page.hasMore;
      const newest = page.messages.at(-1);
      if (newest && newest.seq > result.lastSeq) result.lastSeq = newest.seq;
    }
    (session.joinedSeq ??= new Map()).set(conversationId, result.lastSeq);
    return result;
  }

  async leave(session: Session, input: { conversationId: string }): Promise<void> {
    const { conversationId } = input;
    await this.requireMember(session.userId, conversationId);
    await this.d.rooms.leave(session, conversationId);
    session.joinedSeq?.delete(conversationId);
    this.forgetIfEmpty(conversationId);
    this.typingState.endBySession(conversationId, session.userId, session.id);
    session.typed?.delete(conversationId);
    if (session.joined?.delete(conversationId) && (await this.d.broker.presence.leave(conversationId, session.userId, session.id))) {
      this.d.fanout.presence(conversationId, session.userId, false);
    }
  }

  async typing(session: Session, input: { conversationId: string; userId?: string | undefined }): Promise<void> {
    if (input.userId !== undefined && input.userId !== session.userId) throw forbidden("userId is not the authenticated user");
    await this.requireMember(session.userId, input.conversationId);
    (session.typed ??= new Set()).add(input.conversationId);
    this.typingState.start(input.conversationId, session.userId, session.id);
  }

  async stopTyping(session: Session, input: { conversationId: string }): Promise<void> {
    await this.requireMember(session.userId, input.conversationId);
    this.typingState.end(input.conversationId, session.userId);
  }

  /** The session is gone: every typing it took part in ends (joined or not), and its presence. */
  disconnect(session: Session): void {
    const { userId } = session;
    if (session.typed) for (const conversationId of session.typed) this.typingState.endBySession(conversationId, userId, session.id);
    session.typed = undefined;
    const joined = session.joined;
    if (!joined) return;
    const conversations = [...joined];
    // Once Socket.IO has taken the socket out of its rooms.
    setImmediate(() => conversations.forEach((c) => this.forgetIfEmpty(c)));
    for (const conversationId of conversations) {
      joined.delete(conversationId);
      this.d.broker.presence.leave(conversationId, userId, session.id).then(
        (offline) => offline && this.d.fanout.presence(conversationId, userId, false),
        (err: unknown) => this.d.onError(err, "presence leave"),
      );
    }
  }

  private forgetIfEmpty(conversationId: string): void {
    if (this.d.rooms.localSessions(conversationId).length === 0) this.ledger.forget(conversationId);
  }

  close(): void {
    this.typingState.close();
    this.repair.close();
    this.typingView.close();
  }
}
