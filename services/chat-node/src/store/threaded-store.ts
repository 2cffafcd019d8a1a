/**
 * The SQLite store run in a worker thread (sqlite-worker.ts), behind the same MessageStore
 * interface. Calls are messages to the worker; its errors come back by name, so a
 * StoreUnavailableError stays one. If the worker dies, every pending call fails UNAVAILABLE and
 * the next call starts a new worker on the same file (SQLite's transactions make that safe).
 */
import { Worker } from "node:worker_threads";
import type { Conversation, MessagePage } from "@chat/protocol";
import type { SqliteStoreOptions } from "./sqlite-store.ts";
import type { Reply, Request } from "./sqlite-worker.ts";
import {
  StoreUnavailableError,
  type AppendResult,
  type HistoryRange,
  type MessageStore,
  type NewConversation,
  type NewMessage,
} from "./types.ts";

/**
 * Checkpoint after this many messages, between batches: measured against SQLite's checkpoint inside
 * the commit (docs/benchmark.md), the p99 at 3000 and 4000 msg/s was lower in 5 of 6 rounds each.
 */
const DEFERRED_CHECKPOINT_MESSAGES = 2500;

interface Pending {
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

export class ThreadedSqliteStore implements MessageStore {
  readonly kind = "sqlite" as const;
  private readonly opts: SqliteStoreOptions;
  private worker: Worker | undefined;
  private ready: Promise<void> | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  /** `deferredCheckpointMessages` defaults to 2500 here (about 10,000 WAL pages, at about four per message). */
  constructor(opts: SqliteStoreOptions) {
    this.opts = { deferredCheckpointMessages: DEFERRED_CHECKPOINT_MESSAGES, ...opts };
  }

  private spawn(): Worker {
    const worker = new Worker(new URL("./sqlite-worker.ts", import.meta.url), { workerData: this.opts });
    worker.on("message", (reply: Reply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (reply.ok) p.resolve(reply.value);
      else p.reject(reply.error.name === "StoreUnavailableError" ? new StoreUnavailableError(reply.error.message) : Object.assign(new Error(reply.error.message), { name: reply.error.name }));
    });
    const lost = (why: string) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.ready = undefined;
      for (const p of this.pending.values()) p.reject(new StoreUnavailableError(`sqlite worker ${why}`));
      this.pending.clear();
    };
    worker.on("error", (err) => lost(`failed: ${err.message}`));
    worker.on("exit", (code) => lost(`exited with code ${code}`));
    return worker;
  }

  private send<T>(worker: Worker, method: keyof MessageStore, args: unknown[]): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.postMessage({ id, method, args } satisfies Request);
    });
  }

  /** The live worker, started and initialized on first use and after a crash. */
  private async live(): Promise<Worker> {
    if (this.closed) throw new StoreUnavailableError("sqlite store is closed");
    if (!this.worker || !this.ready) {
      const worker = this.spawn();
      this.worker = worker;
      this.ready = this.send<void>(worker, "init", []);
    }
    const worker = this.worker;
    await this.ready;
    return worker;
  }

  private async call<T>(method: keyof MessageStore, ...args: unknown[]): Promise<T> {
    return this.send<T>(await this.live(), method, args);
  }

  async init(): Promise<void> {
    await this.live();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const worker = this.worker;
    if (worker) {
      await this.send(worker, "close", []).catch(() => {});
      this.worker = undefined;
      await worker.terminate();
    }
    this.closed = true;
  }

  ping(): Promise<void> {
    return this.call("ping");
  }
  createConversation(input: NewConversation): Promise<Conversation> {
    return this.call("createConversation", input);
  }
  getConversation(id: string): Promise<Conversation | null> {
    return this.call("getConversation", id);
  }
  listConversations(userId: string, limit: number): Promise<Conversation[]> {
    return this.call("listConversations", userId, limit);
  }
  appendBatch(batch: readonly NewMessage[]): Promise<AppendResult[]> {
    return this.call("appendBatch", batch);
  }
  listMessages(conversationId: string, range: HistoryRange): Promise<MessagePage> {
    return this.call("listMessages", conversationId, range);
  }
}
