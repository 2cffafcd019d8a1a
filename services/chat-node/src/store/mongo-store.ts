/**
 * The cluster store: MongoDB through the official driver, shared by every node.
 *
 * Schema: `conversations` holds one document per conversation, `{ _id, title, members, createdAt,
 * lastSeq, lastActivityAt }`; `lastSeq` is the conversation's seq counter. `messages` holds one
 * document per message, `{ _id: id, conversationId, senderId, message, timestamp, seq,
 * clientMessageId? }` (the key is left out, never null, when the client gave none). Indexes, made
 * idempotently by init(): messages `(conversationId, seq)` unique (history, catch-up, and the
 * backstop against a repeated seq); messages `(conversationId, senderId, clientMessageId)` unique
 * and partial on `clientMessageId: { $exists: true }` (idempotency); conversations
 * `(members, lastActivityAt desc)` (a user's conversations, newest activity first, from the index).
 *
 * No gap, no repeat: one batch is ONE multi-document transaction, in this order:
 *   1. look up the batch's idempotency keys that are already stored (they become `duplicate`);
 *      repeats inside the batch resolve to their first occurrence;
 *   2. for each conversation with new messages, in id order, reserve the range with ONE
 *      `findOneAndUpdate($inc: { lastSeq: k })`, `returnDocument: "after"`: the range is
 *      `lastSeq - k + 1 .. lastSeq`;
 *   3. insert the new messages with one `insertMany({ ordered: false })`;
 *   4. commit with the configured write concern (default `majority`).
 * Why a transaction rather than `$inc` followed by a plain insertMany: between those two writes a
 * reserved range can be orphaned, and an orphaned range is a permanent gap. Two ways it happens:
 * a racing duplicate (another node stores the same idempotency key after step 1 and our insert of
 * it fails on the unique index), and a failure between the writes (node killed, primary stepping
 * down, network lost). Renumbering cannot repair either: the other documents of the range are
 * already visible, and the counter may have moved on. Inside a transaction the reservation and
 * the inserts commit together or not at all, so an aborted attempt leaves neither a hole nor a
 * moved counter; the racing duplicate aborts the attempt (duplicate key, or WriteConflict while
 * the other node's transaction is open) and the retry's step 1 finds the stored original, which
 * is returned with `duplicate: true`. A second property comes free: the counter document stays
 * write-locked by the transaction until its commit, so the ranges of one conversation commit in
 * seq order and a reader never sees seq n+1 before seq n, so `after=n` catch-up cannot skip a
 * message that commits later. The cost: transactions need a replica set (a single-node one is
 * enough; init() says so when it is missing), and writes to one conversation serialize on its
 * counter document, which group commit amortizes over a whole batch.
 * Conflicts (WriteConflict, a racing duplicate, other TransientTransactionErrors) are retried with
 * jittered backoff until BATCH_RETRY_MS (5 s) after the batch's first attempt: under contention several
 * nodes appending to one conversation abort each other's transactions (MongoDB does not queue a
 * write behind another transaction's lock; it aborts it), and a count of attempts would fail whole
 * batches where waiting a little longer succeeds. Connectivity failures before the commit are not
 * retried here: they reject the batch at once with StoreUnavailableError (nothing was committed,
 * nothing is acknowledged), the abort goes on in the background, and the driver reconnects by
 * itself. A commit whose outcome is unknown (UnknownTransactionCommitResult: the primary stepped
 * down or the connection dropped during the commit) is retried, as MongoDB's own `withTransaction`
 * does, until the same deadline: failing it while it may have committed would answer UNAVAILABLE
 * for a stored message that was never broadcast.
 * Reads inside the transaction use `local` read concern: a majority snapshot lags the primary, and
 * the hot counter document written by the previous batch would then conflict on every attempt.
 * Reads outside it (history, catch-up, conversations) use `majority` when writes do: they then
 * never return a message that a failover could roll back, and its seq be given to another.
 */
import {
  MongoBulkWriteError,
  MongoClient,
  MongoError,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoServerError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
  MongoWriteConcernError,
  ReadConcern,
  WriteConcern,
  type ClientSession,
  type Collection,
  type Db,
  type Filter,
  type TransactionOptions,
} from "mongodb";
import type { Conversation, MessageData, MessagePage } from "@chat/protocol";
import { ConfigError } from "../config.ts";
import {
  StoreUnavailableError,
  type AppendResult,
  type HistoryRange,
  type MessageStore,
  type NewConversation,
  type NewMessage,
} from "./types.ts";

interface MessageDoc {
  _id: string;
  conversationId: string;
  senderId: string;
  message: string;
  timestamp: Date;
  seq: number;
  clientMessageId?: string;
}

interface ConversationDoc {
  _id: string;
  title: string;
  members: string[];
  createdAt: Date;
  lastSeq: number;
  lastActivityAt: Date;
}

export interface MongoStoreOptions {
  url: string;
  dbName: string;
  writeConcern: "majority" | number;
  logger?: { warn(obj: object, msg?: string): void };
  /** How long an operation waits for a reachable server before failing (ms). */
  serverSelectionTimeoutMS?: number;
}

const IDEMPOTENCY_INDEX = "conversation_sender_client_message_id";
/**
 * How long one batch's transaction is retried on conflicts, and its commit on an unknown outcome
 * (ms). Half the drain's default budget (SHUTDOWN_TIMEOUT_MS 10 s), since a last attempt may still
 * wait out a server selection (5 s) past it.
 */
const BATCH_RETRY_MS = 5_000;
/** Write-concern timeout: without one, `majority` waits forever when too few members are up (ms). */
const WRITE_CONCERN_TIMEOUT_MS = 5_000;
/** Server codes that mean "the database is not answering properly right now". */
const UNAVAILABLE_CODES = new Set([
  6, 7, 50, 64, 89, 91, 112, 133, 134, 189, 251, 262, 9001, 10058, 10107, 11600, 11602, 13435, 13436, 46841,
]);
const UNAVAILABLE_LABELS = ["RetryableWriteError", "TransientTransactionError", "UnknownTransactionCommitResult", "SystemOverloadedError", "ResetPool"];

/** True when `err` means the database is unreachable or refused for now (not a bug of ours). */
function isUnavailable(err: unknown): boolean {
  if (!(err instanceof MongoError)) return false;
  if (err instanceof MongoNetworkError || err instanceof MongoWriteConcernError) return true;
  // Server selection, topology or client closed, stale primary, timeouts: every driver-side
  // error is about reaching the server, except argument and BSON errors.
  if (!(err instanceof MongoServerError)) return !/Invalid|BSON|Parse|Compatibility/.test(err.name);
  if (err instanceof MongoBulkWriteError && err.err) return true;
  if (UNAVAILABLE_LABELS.some((l) => err.hasErrorLabel(l))) return true;
  return typeof err.code === "number" && UNAVAILABLE_CODES.has(err.code);
}

function unavailable(err: unknown, what: string): unknown {
  if (err instanceof StoreUnavailableError || !isUnavailable(err)) return err;
  return new StoreUnavailableError(`mongodb ${what}: ${(err as Error).message}`, { cause: err });
}

/**
 * The driver could not reach a server (network, server selection, closed topology or client),
 * also when `insertMany` hands it over wrapped in a MongoBulkWriteError (as its `errorResponse`).
 */
function isConnectivityError(err: unknown): boolean {
  const e = err instanceof MongoBulkWriteError && err.errorResponse instanceof Error ? err.errorResponse : err;
  return e instanceof MongoNetworkError || e instanceof MongoServerSelectionError || e instanceof MongoTopologyClosedError || e instanceof MongoNotConnectedError;
}

/** A duplicate key on the idempotency index (a racing duplicate from another node). */
function isIdempotencyConflict(err: unknown): boolean {
  if (!(err instanceof MongoServerError)) return false;
  if (err instanceof MongoBulkWriteError) {
    const list = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
    return list.some((w) => w.code === 11000 && (w.errmsg ?? "").includes(IDEMPOTENCY_INDEX));
  }
  return err.code === 11000 && err.message.includes(IDEMPOTENCY_INDEX);
}

const keyOf = (m: { conversationId: string; senderId: string; clientMessageId?: string }) =>
  `${m.conversationId}\u0000${m.senderId}\u0000${m.clientMessageId ?? ""}`;

function toMessage(d: MessageDoc): MessageData {
  const m: MessageData = {
    id: d._id, conversationId: d.conversationId, senderId: d.senderId, message: d.message,
    timestamp: d.timestamp.toISOString(), seq: d.seq,
  };
  if (d.clientMessageId !== undefined) m.clientMessageId = d.clientMessageId;
  return m;
}

function toConversation(d: ConversationDoc): Conversation {
  return {
    id: d._id, title: d.title, members: d.members, createdAt: d.createdAt.toISOString(),
    lastSeq: d.lastSeq, lastActivityAt: d.lastActivityAt.toISOString(),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class MongoStore implements MessageStore {
  readonly kind = "mongodb" as const;
  private readonly opts: MongoStoreOptions;
  private readonly client: MongoClient;
  private readonly db: Db;
  private readonly messages: Collection<MessageDoc>;
  private readonly conversations: Collection<ConversationDoc>;
  /** The same collections for reads outside transactions (read concern `majority` when writes are). */
  private readonly messagesRead: Collection<MessageDoc>;
  private readonly conversationsRead: Collection<ConversationDoc>;
  private readonly txn: TransactionOptions;

  constructor(opts: MongoStoreOptions) {
    this.opts = opts;
    try {
      this.client = new MongoClient(opts.url, {
        serverSelectionTimeoutMS: opts.serverSelectionTimeoutMS ?? 5000,
        retryWrites: true,
        retryReads: true,
        ignoreUndefined: true,
        appName: "chat-node",
      });
    } catch (err) {
      // The driver parses the connection string here, stricter than config.ts's URL check
      // (`mongodb://` without a host, an unknown option, a port on mongodb+srv): a configuration error.
      // (The connection-string package throws its own MongoParseError, not a MongoError.)
      if (err instanceof Error && err.name.startsWith("Mongo")) throw new ConfigError(`MONGO_URL cannot be used: ${err.message}`);
      throw err;
    }
    this.db = this.client.db(opts.dbName);
    // j: true: acknowledged only once in the journal on disk. `majority` journals by default
    // (writeConcernMajorityJournalDefault), a number of members would not without it.
    const writeConcern = new WriteConcern(opts.writeConcern, WRITE_CONCERN_TIMEOUT_MS, true);
    this.messages = this.db.collection<MessageDoc>("messages", { writeConcern });
    this.conversations = this.db.collection<ConversationDoc>("conversations", { writeConcern });
    // A message acknowledged with `majority` is in the majority snapshot once acknowledged, so these
    // reads see every acknowledged message and nothing a failover could roll back. With a number of
    // members, a majority read could miss a message just acknowledged: those reads stay `local`.
    const readConcern = new ReadConcern(opts.writeConcern === "majority" ? "majority" : "local");
    this.messagesRead = this.db.collection<MessageDoc>("messages", { readConcern });
    this.conversationsRead = this.db.collection<ConversationDoc>("conversations", { readConcern });
    this.txn = { readConcern: new ReadConcern("local"), writeConcern, readPreference: "primary" };
  }

  async init(): Promise<void> {
    try {
      await this.client.connect();
      const hello = await this.db.admin().command({ hello: 1 });
      if (!hello.setName && hello.msg !== "isdbgrid") {
        throw new Error(
          "the MongoDB store needs a replica set (it commits each batch in a transaction): start mongod with --replSet rs0, " +
            "run rs.initiate() once, and use a URL like mongodb://localhost:27017/?replicaSet=rs0",
        );
      }
      const w = this.opts.writeConcern;
      // Data-bearing members: electable ones (`hosts`) and priority-0 ones (`passives`).
      const members = (Array.isArray(hello.hosts) ? hello.hosts.length : 0) + (Array.isArray(hello.passives) ? hello.passives.length : 0);
      if (typeof w === "number" && members > 0 && w <= members / 2) {
        this.opts.logger?.warn(
          { writeConcern: w, members },
          "MONGO_WRITE_CONCERN is not a majority of the replica set: a failover can roll back acknowledged messages; use majority",
        );
      }
      await this.messages.createIndexes([
        { key: { conversationId: 1, seq: 1 }, name: "conversation_seq", unique: true },
        {
          key: { conversationId: 1, senderId: 1, clientMessageId: 1 }, name: IDEMPOTENCY_INDEX, unique: true,
          partialFilterExpression: { clientMessageId: { $exists: true } },
        },
      ]);
      await this.conversations.createIndexes([{ key: { members: 1, lastActivityAt: -1, _id: 1 }, name: "members_activity" }]);
    } catch (err) {
      throw unavailable(err, "init");
    }
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  async ping(): Promise<void> {
    try {
      await this.db.command({ ping: 1 });
    } catch (err) {
      // Whatever keeps the database from answering a ping makes this node not ready.
      throw new StoreUnavailableError(`mongodb ping: ${(err as Error).message}`, { cause: err });
    }
  }

  async createConversation(c: NewConversation): Promise<Conversation> {
    const createdAt = new Date(c.createdAt);
    const doc: ConversationDoc = { _id: c.id, title: c.title, members: [...c.members], createdAt, lastSeq: 0, lastActivityAt: createdAt };
    try {
      await this.conversations.insertOne(doc);
    } catch (err) {
      throw unavailable(err, "createConversation");
    }
    return toConversation(doc);
  }

  async getConversation(id: string): Promise<Conversation | null> {
    try {
      const d = await this.conversationsRead.findOne({ _id: id });
      return d ? toConversation(d) : null;
    } catch (err) {
      throw unavailable(err, "getConversation");
    }
  }

  async listConversations(userId: string, limit: number): Promise<Conversation[]> {
    try {
      const docs = await this.conversationsRead.find({ members: userId }).sort({ lastActivityAt: -1, _id: 1 }).limit(limit).toArray();
      return docs.map(toConversation);
    } catch (err) {
      throw unavailable(err, "listConversations");
    }
  }

  async listMessages(conversationId: string, range: HistoryRange): Promise<MessagePage> {
    const { before, after, limit } = range;
    const seq: { $gt?: number; $lt?: number } = {};
    if (after !== undefined) seq.$gt = after;
    if (before !== undefined) seq.$lt = before;
    const filter: Filter<MessageDoc> = after === undefined && before === undefined ? { conversationId } : { conversationId, seq };
    // Catch-up pages forward from `after`; otherwise page backward from `before` (or the newest).
    const ascending = after !== undefined;
    try {
      const docs = await this.messagesRead.find(filter).sort({ seq: ascending ? 1 : -1 }).limit(limit + 1).toArray();
      const hasMore = docs.length > limit;
      const page = docs.slice(0, limit);
      if (!ascending) page.reverse();
      return { messages: page.map(toMessage), hasMore };
    } catch (err) {
      throw unavailable(err, "listMessages");
    }
  }

  async appendBatch(batch: readonly NewMessage[]): Promise<AppendResult[]> {
    if (batch.length === 0) return [];
    const session = this.client.startSession();
    const deadline = Date.now() + BATCH_RETRY_MS;
    let endInBackground = false;
    try {
      for (let attempt = 1; ; attempt++) {
        session.startTransaction(this.txn);
        try {
          const results = await this.appendInTransaction(session, batch);
          await this.commit(session, deadline);
          return results;
        } catch (err) {
          if (isConnectivityError(err)) {
            // Before the commit nothing was committed; a commit is only given up at the deadline.
            // Aborting would wait for a server too: it is left to the background.
            endInBackground = true;
            throw unavailable(err, "appendBatch");
          }
          if (session.inTransaction()) await session.abortTransaction().catch(() => undefined);
          // A racing duplicate or a WriteConflict: retry (step 1 then sees what the other node stored).
          const conflict = isIdempotencyConflict(err) || (err instanceof MongoServerError && err.hasErrorLabel("TransientTransactionError"));
          if (!conflict) throw unavailable(err, "appendBatch");
          if (Date.now() >= deadline) {
            throw new StoreUnavailableError(`mongodb appendBatch: still conflicting after ${attempt} attempts in ${BATCH_RETRY_MS} ms`, { cause: err });
          }
          this.opts.logger?.warn({ attempt, batch: batch.length, code: (err as MongoServerError).code }, "mongodb batch conflicted, retrying");
          await sleep(Math.random() * Math.min(2 * 1.5 ** attempt, 200));
        }
      }
    } finally {
      if (endInBackground) void session.endSession().catch(() => undefined);
      else await session.endSession().catch(() => undefined);
    }
  }

  /**
   * Commits. When the outcome is unknown (UnknownTransactionCommitResult, which the driver also
   * gives a network error during the commit, or no server reachable), the commit alone is retried
   * until `deadline`: the server applies a transaction's commit once, however often it is sent. A
   * commit that failed for sure (a TransientTransactionError, e.g. the primary stepped down before
   * it) is retried whole by the caller.
   */
  private async commit(session: ClientSession, deadline: number): Promise<void> {
    for (;;) {
      try {
        await session.commitTransaction();
        return;
      } catch (err) {
        // A server not reachable for a retry of the commit comes without the label, though the
        // first attempt may have committed: unknown too. A client closed here is final.
        const closed = err instanceof MongoTopologyClosedError || err instanceof MongoNotConnectedError;
        const unknown = !closed && (isConnectivityError(err) || (err instanceof MongoError && err.hasErrorLabel("UnknownTransactionCommitResult") && err.code !== 50)); // 50: MaxTimeMSExpired
        if (!unknown || Date.now() >= deadline) throw err;
        this.opts.logger?.warn({ code: (err as MongoError).code }, "mongodb commit outcome unknown, retrying the commit");
        await sleep(100);
      }
    }
  }

  /** Steps 1 to 3 of the header, inside the session's open transaction. */
  private async appendInTransaction(session: ClientSession, batch: readonly NewMessage[]): Promise<AppendResult[]> {
    const results = new Array<AppendResult | undefined>(batch.length);

    // 1. Idempotency: repeats inside the batch point at their first occurrence; stored keys are duplicates.
    const first = new Map<string, number>();
    const repeats: [number, number][] = [];
    const keyed: NewMessage[] = [];
    for (let i = 0; i < batch.length; i++) {
      const m = batch[i]!;
      if (m.clientMessageId === undefined) continue;
      const prev = first.get(keyOf(m));
      if (prev !== undefined) repeats.push([i, prev]);
      else {
        first.set(keyOf(m), i);
        keyed.push(m);
      }
    }
    const stored = new Map<string, MessageDoc>();
    if (keyed.length > 0) {
      const or = keyed.map((m) => ({ conversationId: m.conversationId, senderId: m.senderId, clientMessageId: { $eq: m.clientMessageId!, $exists: true } }));
      for (const d of await this.messages.find({ $or: or }, { session }).toArray()) stored.set(keyOf(d), d);
    }
    const fresh: number[] = [];
    const perConversation = new Map<string, { n: number; lastTs: Date }>();
    for (let i = 0; i < batch.length; i++) {
      const m = batch[i]!;
      if (m.clientMessageId !== undefined) {
        if (first.get(keyOf(m)) !== i) continue;
        const d = stored.get(keyOf(m));
        if (d) {
          results[i] = { message: toMessage(d), duplicate: true };
          continue;
        }
      }
      fresh.push(i);
      const ts = new Date(m.timestamp);
      const c = perConversation.get(m.conversationId);
      if (!c) perConversation.set(m.conversationId, { n: 1, lastTs: ts });
      else {
        c.n++;
        if (ts > c.lastTs) c.lastTs = ts;
      }
    }

    // 2. One $inc per conversation reserves its range; id order keeps concurrent batches from
    // aborting each other over two counters taken in opposite orders.
    const nextSeq = new Map<string, number>();
    for (const id of [...perConversation.keys()].sort()) {
      const { n, lastTs } = perConversation.get(id)!;
      const after = await this.conversations.findOneAndUpdate(
        { _id: id },
        { $inc: { lastSeq: n }, $max: { lastActivityAt: lastTs } },
        { session, returnDocument: "after", projection: { lastSeq: 1 } },
      );
      if (!after) throw new Error(`append to unknown conversation ${id}`);
      nextSeq.set(id, after.lastSeq - n + 1);
    }

    // 3. One insertMany for the batch.
    const docs: MessageDoc[] = [];
    for (const i of fresh) {
      const m = batch[i]!;
      const seq = nextSeq.get(m.conversationId)!;
      nextSeq.set(m.conversationId, seq + 1);
      const d: MessageDoc = { _id: m.id, conversationId: m.conversationId, senderId: m.senderId, message: m.message, timestamp: new Date(m.timestamp), seq };
      if (m.clientMessageId !== undefined) d.clientMessageId = m.clientMessageId;
      docs.push(d);
      results[i] = { message: toMessage(d), duplicate: false };
    }
    if (docs.length > 0) await this.messages.insertMany(docs, { session, ordered: false });
    for (const [i, f] of repeats) results[i] = { message: results[f]!.message, duplicate: true };
    return results as AppendResult[];
  }
}
