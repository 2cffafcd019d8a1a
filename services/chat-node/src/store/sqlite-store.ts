/**
 * The embedded store: SQLite through Node 24's `node:sqlite`, one file under DATA_DIR, so a node
 * runs with no server installed and keeps its messages across restarts.
 *
 * Several node processes may share the file (the local cluster does). Every batch is one
 * `BEGIN IMMEDIATE` transaction, which takes SQLite's single write lock before reading anything:
 * the idempotency look-up, the `seq` reservation (`last_seq` of the conversation row) and the
 * inserts of a batch are serialized against every other writer, so `seq` has no gap and no repeat
 * across processes. Duplicates are decided by the unique index on (conversation_id, sender_id,
 * client_message_id) itself: an insert it turns into nothing consumes no `seq`.
 *
 * WAL mode with `synchronous=FULL` (default) fsyncs the log at every commit: a committed batch
 * survives a crash of the process or of the machine. `NORMAL` survives a process crash only.
 *
 * Checkpoints (copying the WAL into the database file, then an fsync of it) take 6-14 ms under load.
 * SQLite runs one inside the commit that crosses `wal_autocheckpoint`, holding that batch's answer.
 * With `deferredCheckpointMessages` the owner runs them instead, between batches
 * (`checkpointIfDue()` after answering one: the store thread runs it while the main thread
 * broadcasts), and SQLite's own stays only as a safety net at four times the usual WAL size.
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import fs from "node:fs";
import path from "node:path";
import { ConfigError } from "../config.ts";
import type { Conversation, MessageData, MessagePage } from "@chat/protocol";
import {
  StoreUnavailableError,
  type AppendResult,
  type HistoryRange,
  type MessageStore,
  type NewConversation,
  type NewMessage,
} from "./types.ts";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS conversations (
  id TEXT PRIMARY KEY,
  title TEXT NOT NULL,
  members TEXT NOT NULL,
  created_at TEXT NOT NULL,
  last_seq INTEGER NOT NULL DEFAULT 0,
  last_activity_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS members (
  user_id TEXT NOT NULL,
  conversation_id TEXT NOT NULL,
  PRIMARY KEY (user_id, conversation_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
  conversation_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  id TEXT NOT NULL,
  sender_id TEXT NOT NULL,
  body TEXT NOT NULL,
  ts TEXT NOT NULL,
  client_message_id TEXT,
  PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS messages_idempotency
  ON messages (conversation_id, sender_id, client_message_id) WHERE client_message_id IS NOT NULL;
`;

interface MessageRow {
  conversation_id: string;
  seq: number;
  id: string;
  sender_id: string;
  body: string;
  ts: string;
  client_message_id: string | null;
}

interface ConversationRow {
  id: string;
  title: string;
  members: string;
  created_at: string;
  last_seq: number;
  last_activity_at: string;
}

function toMessage(r: MessageRow): MessageData {
  const m: MessageData = { id: r.id, conversationId: r.conversation_id, senderId: r.sender_id, message: r.body, timestamp: r.ts, seq: Number(r.seq) };
  if (r.client_message_id !== null) m.clientMessageId = r.client_message_id;
  return m;
}

function toConversation(r: ConversationRow): Conversation {
  return { id: r.id, title: r.title, members: JSON.parse(r.members) as string[], createdAt: r.created_at, lastSeq: Number(r.last_seq), lastActivityAt: r.last_activity_at };
}

export interface SqliteStoreOptions {
  dataDir: string;
  synchronous?: "FULL" | "NORMAL";
  /** How long a writer waits for another process's lock before the batch fails (ms). */
  busyTimeoutMs?: number;
  /** Messages appended between checkpoints run by `checkpointIfDue()`; 0 or absent: SQLite checkpoints inside commits. */
  deferredCheckpointMessages?: number;
  /**
   * Holds the database file alone (`locking_mode = EXCLUSIVE`) from `init()` to `close()`: the store
   * run on the main thread (SQLITE_THREAD=main) must never wait for another process's lock, since
   * that wait would stall every socket of the node. Opening a file another process holds fails.
   */
  exclusive?: boolean;
}

/** SQLite's automatic checkpoint threshold in WAL pages (its default is 1000). */
const AUTO_CHECKPOINT_PAGES = 10_000;

/**
 * Creates DATA_DIR and its missing parents one level at a time, then checks that it is a writable
 * directory; anything else is a ConfigError naming DATA_DIR (main.ts: exit 78). Bounded by the
 * path's depth, unlike `mkdirSync(dir, { recursive: true })`, which loops forever where mkdir keeps
 * failing with ENOENT under an existing parent (procfs).
 */
export function ensureDataDir(dir: string): void {
  const fail = (reason: string) => new ConfigError(`DATA_DIR "${dir}" cannot be used: ${reason}`);
  const why = (err: unknown) => {
    const e = err as NodeJS.ErrnoException;
    return e.code ? e.message.replace(/, \w+ '.*'$/s, "") : String(err);
  };
  const isDirectory = (p: string) => {
    try {
      return fs.statSync(p).isDirectory();
    } catch {
      return false;
    }
  };
  const missing: string[] = [];
  for (let cur = path.resolve(dir); ; ) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(cur);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code === "ENOENT" || code === "ENOTDIR") && path.dirname(cur) !== cur) {
        missing.push(cur);
        cur = path.dirname(cur);
        continue;
      }
      throw fail(`cannot inspect ${cur}: ${why(err)}`);
    }
    if (!stat.isDirectory()) throw fail(`${cur} is not a directory`);
    break;
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d);
    } catch (err) {
      // Another node sharing DATA_DIR may have created it meanwhile.
      if ((err as NodeJS.ErrnoException).code === "EEXIST" && isDirectory(d)) continue;
      throw fail(`cannot create ${d}: ${why(err)}`);
    }
  }
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    throw fail(`not writable: ${why(err)}`);
  }
}

export class SqliteStore implements MessageStore {
  readonly kind = "sqlite" as const;
  private db: DatabaseSync | undefined;
  private readonly opts: SqliteStoreOptions;
  /** Messages appended since the last deferred checkpoint. */
  private sinceCheckpoint = 0;
  private s!: {
    findIdem: StatementSync;
    lastSeq: StatementSync;
    setSeq: StatementSync;
    insert: StatementSync;
    getConv: StatementSync;
    insertConv: StatementSync;
    insertMember: StatementSync;
    listConvs: StatementSync;
    after: StatementSync;
    afterBefore: StatementSync;
    before: StatementSync;
    newest: StatementSync;
  };

  constructor(opts: SqliteStoreOptions) {
    this.opts = opts;
  }

  /** The database file. */
  get file(): string {
    return path.join(this.opts.dataDir, "chat.db");
  }

  async init(): Promise<void> {
    ensureDataDir(this.opts.dataDir);
    const db = new DatabaseSync(this.file);
    db.exec(`PRAGMA busy_timeout = ${this.opts.busyTimeoutMs ?? 10_000}`);
    // Before the first access: in WAL mode an exclusive connection also keeps SQLite's shared-memory index to itself.
    if (this.opts.exclusive) db.exec("PRAGMA locking_mode = EXCLUSIVE");
    try {
      db.exec("PRAGMA journal_mode = WAL");
      db.exec(`PRAGMA synchronous = ${this.opts.synchronous ?? "FULL"}`);
      db.exec("PRAGMA cache_size = -65536");
      db.exec(`PRAGMA wal_autocheckpoint = ${this.opts.deferredCheckpointMessages ? 4 * AUTO_CHECKPOINT_PAGES : AUTO_CHECKPOINT_PAGES}`);
      db.exec(SCHEMA);
      // The write lock now, held until close: a file in use elsewhere is refused at start-up, not mid-send.
      if (this.opts.exclusive) db.exec("BEGIN IMMEDIATE; COMMIT");
    } catch (err) {
      db.close();
      // Still locked after busy_timeout at start-up: another process holds the file alone (a node
      // with SQLITE_THREAD=main), or this one wants it alone and others use it.
      if (/database is locked/i.test((err as Error).message)) {
        throw new ConfigError(`DATA_DIR "${this.opts.dataDir}" is in use by another process: SQLITE_THREAD=main holds its database for one node alone; nodes that share a DATA_DIR all need SQLITE_THREAD=worker`);
      }
      throw err;
    }
    this.db = db;
    this.s = {
      findIdem: db.prepare("SELECT * FROM messages WHERE conversation_id = ? AND sender_id = ? AND client_message_id = ?"),
      lastSeq: db.prepare("SELECT last_seq FROM conversations WHERE id = ?"),
      setSeq: db.prepare("UPDATE conversations SET last_seq = ?, last_activity_at = MAX(last_activity_at, ?) WHERE id = ?"),
      // Only the idempotency index may turn an insert into nothing; a (conversation_id, seq) clash still fails the batch.
      insert: db.prepare(
        "INSERT INTO messages (conversation_id, seq, id, sender_id, body, ts, client_message_id) VALUES (?, ?, ?, ?, ?, ?, ?) " +
          "ON CONFLICT (conversation_id, sender_id, client_message_id) WHERE client_message_id IS NOT NULL DO NOTHING",
      ),
      getConv: db.prepare("SELECT * FROM conversations WHERE id = ?"),
      insertConv: db.prepare("INSERT INTO conversations (id, title, members, created_at, last_seq, last_activity_at) VALUES (?, ?, ?, ?, 0, ?)"),
      insertMember: db.prepare("INSERT OR IGNORE INTO members (user_id, conversation_id) VALUES (?, ?)"),
      listConvs: db.prepare(
        "SELECT c.* FROM members m JOIN conversations c ON c.id = m.conversation_id WHERE m.user_id = ? ORDER BY c.last_activity_at DESC, c.id ASC LIMIT ?",
      ),
      after: db.prepare("SELECT * FROM messages WHERE conversation_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?"),
      afterBefore: db.prepare("SELECT * FROM messages WHERE conversation_id = ? AND seq > ? AND seq < ? ORDER BY seq ASC LIMIT ?"),
      before: db.prepare("SELECT * FROM messages WHERE conversation_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"),
      newest: db.prepare("SELECT * FROM messages WHERE conversation_id = ? ORDER BY seq DESC LIMIT ?"),
    };
  }

  async close(): Promise<void> {
    const db = this.db;
    this.db = undefined;
    if (db?.isOpen) db.close();
  }

  private open(): DatabaseSync {
    if (!this.db?.isOpen) throw new StoreUnavailableError("sqlite store is closed");
    return this.db;
  }

  /**
   * Runs a PASSIVE checkpoint once `deferredCheckpointMessages` messages were appended since the
   * last one; true when it ran. A failure is left to the next one (or SQLite's safety net).
   */
  checkpointIfDue(): boolean {
    const every = this.opts.deferredCheckpointMessages ?? 0;
    if (every <= 0 || this.sinceCheckpoint < every || !this.db?.isOpen) return false;
    this.sinceCheckpoint = 0;
    try {
      this.db.exec("PRAGMA wal_checkpoint(PASSIVE)");
      return true;
    } catch {
      return false;
    }
  }

  async ping(): Promise<void> {
    this.guard(() => this.open().prepare("SELECT 1").get());
  }

  /** Runs `fn`, turning database failures into StoreUnavailableError. */
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw err;
      throw new StoreUnavailableError(`sqlite: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Runs `fn` in one IMMEDIATE transaction (the write lock first), rolled back on any error. */
  private transaction<T>(fn: () => T): T {
    return this.guard(() => {
      const db = this.open();
      db.exec("BEGIN IMMEDIATE");
      try {
        const out = fn();
        db.exec("COMMIT");
        return out;
      } catch (err) {
        if (db.isTransaction) db.exec("ROLLBACK");
        throw err;
      }
    });
  }

  async createConversation(c: NewConversation): Promise<Conversation> {
    return this.transaction(() => {
      this.s.insertConv.run(c.id, c.title, JSON.stringify(c.members), c.createdAt, c.createdAt);
      for (const m of c.members) this.s.insertMember.run(m, c.id);
      return { ...c, members: [...c.members], lastSeq: 0, lastActivityAt: c.createdAt };
    });
  }

  async getConversation(id: string): Promise<Conversation | null> {
    return this.guard(() => {
      this.open();
      const row = this.s.getConv.get(id) as ConversationRow | undefined;
      return row ? toConversation(row) : null;
    });
  }

  async listConversations(userId: string, limit: number): Promise<Conversation[]> {
    return this.guard(() => {
      this.open();
      return (this.s.listConvs.all(userId, limit) as unknown as ConversationRow[]).map(toConversation);
    });
  }

  async appendBatch(batch: readonly NewMessage[]): Promise<AppendResult[]> {
    if (batch.length === 0) return [];
    return this.transaction(() => {
      // Under the write lock, `last_seq` is authoritative: number from it, let the idempotency
      // index decide duplicates (an insert that does nothing consumed no seq), then store the new
      // `last_seq` once per conversation.
      const next = new Map<string, { seq: number; lastTs: string }>();
      const results: AppendResult[] = new Array(batch.length);
      for (let i = 0; i < batch.length; i++) {
        const m = batch[i]!;
        let cur = next.get(m.conversationId);
        if (!cur) {
          const row = this.s.lastSeq.get(m.conversationId) as { last_seq: number } | undefined;
          if (!row) throw new Error(`append to unknown conversation ${m.conversationId}`);
          cur = { seq: Number(row.last_seq), lastTs: m.timestamp };
          next.set(m.conversationId, cur);
        }
        const seq = cur.seq + 1;
        const cmid = m.clientMessageId ?? null;
        const inserted = this.s.insert.run(m.conversationId, seq, m.id, m.senderId, m.message, m.timestamp, cmid).changes > 0;
        if (!inserted) {
          const row = this.s.findIdem.get(m.conversationId, m.senderId, cmid) as MessageRow | undefined;
          if (!row) throw new Error("insert refused without an idempotency match");
          results[i] = { message: toMessage(row), duplicate: true };
          continue;
        }
        cur.seq = seq;
        if (m.timestamp > cur.lastTs) cur.lastTs = m.timestamp;
        const stored: MessageData = { id: m.id, conversationId: m.conversationId, senderId: m.senderId, message: m.message, timestamp: m.timestamp, seq };
        if (cmid !== null) stored.clientMessageId = cmid;
        results[i] = { message: stored, duplicate: false };
      }
      for (const [cid, { seq, lastTs }] of next) this.s.setSeq.run(seq, lastTs, cid);
      this.sinceCheckpoint += batch.length;
      return results;
    });
  }

  async listMessages(conversationId: string, range: HistoryRange): Promise<MessagePage> {
    return this.guard(() => {
      this.open();
      const { before, after, limit } = range;
      let rows: MessageRow[];
      if (after !== undefined) {
        rows = (before !== undefined
          ? this.s.afterBefore.all(conversationId, after, before, limit + 1)
          : this.s.after.all(conversationId, after, limit + 1)) as unknown as MessageRow[];
        const hasMore = rows.length > limit;
        return { messages: rows.slice(0, limit).map(toMessage), hasMore };
      }
      rows = (before !== undefined ? this.s.before.all(conversationId, before, limit + 1) : this.s.newest.all(conversationId, limit + 1)) as unknown as MessageRow[];
      const hasMore = rows.length > limit;
      return { messages: rows.slice(0, limit).reverse().map(toMessage), hasMore };
    });
  }
}
