/**
 * The outbox: every send is written down before it goes out and erased once the server answered,
 * so a message typed offline, or while the node refuses, survives a page reload or a process
 * restart and is sent again, once, with its original `clientMessageId` (the server's idempotency
 * turns any repeat into the original). Storage is pluggable: IndexedDB in browsers, memory
 * elsewhere by default, a JSON file for Node (`@chat/client/node`), or the app's own.
 */

/** `pending`: not yet answered (queued, in flight, or waiting for the network); `failed`: refused. */
export type OutboxState = "pending" | "sent" | "failed";

/** A send the server has not stored yet (or refused). */
export interface OutboxEntry {
  clientMessageId: string;
  conversationId: string;
  message: string;
  /** ISO time the app called send(). */
  createdAt: string;
  state: "pending" | "failed";
  /** The refusal, when `failed`. */
  error?: { code: string; message: string };
}

/**
 * Where the outbox lives. `scope` separates users and servers sharing one storage (a browser
 * profile); each call names it. Implementations must survive concurrent calls.
 */
export interface OutboxStorage {
  load(scope: string): Promise<OutboxEntry[]>;
  save(scope: string, entry: OutboxEntry): Promise<void>;
  remove(scope: string, clientMessageId: string): Promise<void>;
}

/** An outbox that lasts as long as the process: the default outside browsers. */
export class MemoryOutboxStorage implements OutboxStorage {
  private readonly scopes = new Map<string, Map<string, OutboxEntry>>();

  async load(scope: string): Promise<OutboxEntry[]> {
    return [...(this.scopes.get(scope)?.values() ?? [])].map((e) => ({ ...e }));
  }

  async save(scope: string, entry: OutboxEntry): Promise<void> {
    let map = this.scopes.get(scope);
    if (!map) this.scopes.set(scope, (map = new Map()));
    map.set(entry.clientMessageId, { ...entry });
  }

  async remove(scope: string, clientMessageId: string): Promise<void> {
    this.scopes.get(scope)?.delete(clientMessageId);
  }
}

const STORE = "outbox";

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("IndexedDB request failed"));
  });
}

/** An outbox in IndexedDB (database `dbName`, default `chat-outbox`): the default in browsers. */
export class IndexedDbOutboxStorage implements OutboxStorage {
  private readonly dbName: string;
  private db: Promise<IDBDatabase> | undefined;

  constructor(dbName = "chat-outbox") {
    this.dbName = dbName;
  }

  private open(): Promise<IDBDatabase> {
    this.db ??= new Promise<IDBDatabase>((resolve, reject) => {
      const req = globalThis.indexedDB.open(this.dbName, 1);
      req.onupgradeneeded = () => {
        const store = req.result.createObjectStore(STORE, { keyPath: ["scope", "clientMessageId"] });
        store.createIndex("scope", "scope");
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error ?? new Error("IndexedDB open failed"));
    });
    return this.db;
  }

  private async store(mode: IDBTransactionMode): Promise<IDBObjectStore> {
    return (await this.open()).transaction(STORE, mode).objectStore(STORE);
  }

  async load(scope: string): Promise<OutboxEntry[]> {
    const rows = await request((await this.store("readonly")).index("scope").getAll(scope));
    return (rows as (OutboxEntry & { scope: string })[]).map(({ scope: _scope, ...entry }) => entry);
  }

  async save(scope: string, entry: OutboxEntry): Promise<void> {
    await request((await this.store("readwrite")).put({ ...entry, scope }));
  }

  async remove(scope: string, clientMessageId: string): Promise<void> {
    await request((await this.store("readwrite")).delete([scope, clientMessageId]));
  }
}

/** IndexedDB where the platform has it, memory otherwise. */
export function defaultOutboxStorage(): OutboxStorage {
  return typeof globalThis.indexedDB === "undefined" ? new MemoryOutboxStorage() : new IndexedDbOutboxStorage();
}
