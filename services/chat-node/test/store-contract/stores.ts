/**
 * The stores the contract suite runs against, each with a way to open it on a fresh location from
 * this process or from a worker process. SQLite always runs; MongoDB runs when MONGO_URL points at
 * one (a replica set), and is otherwise reported as skipped, with the reason, never as passed.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { MongoClient } from "mongodb";
import { SqliteStore } from "../../src/store/sqlite-store.ts";
import { ThreadedSqliteStore } from "../../src/store/threaded-store.ts";
import { MongoStore } from "../../src/store/mongo-store.ts";
import type { MessageStore, NewMessage } from "../../src/store/types.ts";

/** `sqlite-threaded` is the same store run in a worker thread, as the node runs it. */
export type StoreKind = "sqlite" | "sqlite-threaded" | "mongodb";

/** Where one test's data lives: a DATA_DIR for SQLite, a database name for MongoDB. */
export interface Location {
  kind: StoreKind;
  /** DATA_DIR (sqlite) or database name (mongodb). */
  where: string;
}

export interface StoreVariant {
  kind: StoreKind;
  /** Set when this store cannot run here: the reason, reported as a skip. */
  skip: string | undefined;
  fresh(): Location;
  cleanup(loc: Location): Promise<void>;
}

const MONGO_URL = process.env.MONGO_URL?.trim() || undefined;

export const MONGO_SKIP_REASON =
  "MONGO_URL is not set: the MongoDB store was NOT tested. MongoDB cannot be installed on this machine; " +
  "run with MONGO_URL=mongodb://localhost:27017/?replicaSet=rs0 (a replica set), as CI does";

/** Opens (and inits) the store at `loc`. Used by the tests and by the worker processes alike. */
export async function openStore(loc: Location, opts: { busyTimeoutMs?: number } = {}): Promise<MessageStore> {
  const sqliteOpts = { dataDir: loc.where, ...(opts.busyTimeoutMs !== undefined ? { busyTimeoutMs: opts.busyTimeoutMs } : {}) };
  const store: MessageStore =
    loc.kind === "sqlite"
      ? new SqliteStore(sqliteOpts)
      : loc.kind === "sqlite-threaded"
        ? new ThreadedSqliteStore(sqliteOpts)
        : new MongoStore({ url: mongoUrl(), dbName: loc.where, writeConcern: "majority" });
  await store.init();
  return store;
}

function mongoUrl(): string {
  if (!MONGO_URL) throw new Error(MONGO_SKIP_REASON);
  return MONGO_URL;
}

export const variants: StoreVariant[] = [
  {
    kind: "sqlite",
    skip: undefined,
    fresh: () => ({ kind: "sqlite", where: fs.mkdtempSync(path.join(os.tmpdir(), "chat-store-contract-")) }),
    async cleanup(loc) {
      fs.rmSync(loc.where, { recursive: true, force: true });
    },
  },
  {
    kind: "sqlite-threaded",
    skip: undefined,
    fresh: () => ({ kind: "sqlite-threaded", where: fs.mkdtempSync(path.join(os.tmpdir(), "chat-store-contract-")) }),
    async cleanup(loc) {
      fs.rmSync(loc.where, { recursive: true, force: true });
    },
  },
  {
    kind: "mongodb",
    skip: MONGO_URL ? undefined : MONGO_SKIP_REASON,
    fresh: () => ({ kind: "mongodb", where: `chat_contract_${randomUUID().replace(/-/g, "").slice(0, 16)}` }),
    async cleanup(loc) {
      const client = new MongoClient(mongoUrl(), { serverSelectionTimeoutMS: 5000 });
      try {
        await client.db(loc.where).dropDatabase();
      } finally {
        await client.close();
      }
    },
  },
];

let clock = Date.parse("2026-11-25T10:00:00.000Z");

/** A new message with a fresh id and a strictly increasing timestamp. */
export function newMessage(conversationId: string, senderId: string, text: string, clientMessageId?: string): NewMessage {
  clock += 1;
  const m: NewMessage = { id: randomUUID(), conversationId, senderId, message: text, timestamp: new Date(clock).toISOString() };
  if (clientMessageId !== undefined) m.clientMessageId = clientMessageId;
  return m;
}

/** Moves the message clock forward, so that activity order is unambiguous. */
export function advanceClock(ms: number): string {
  clock += ms;
  return new Date(clock).toISOString();
}
