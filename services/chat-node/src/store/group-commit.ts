/**
 * Group commit in front of any MessageStore. Sends queue here; when no commit is running the queue
 * is flushed on the next turn of the event loop, and while one runs, arrivals gather for the next
 * batch (at most `batchMax`). Under light load a send waits for nothing; under heavy load one
 * transaction (one fsync, one insertMany) carries many sends. `waitMs > 0` additionally holds the
 * first message of a batch that long to gather more.
 *
 * The queue is bounded: past `queueMax` waiting sends, `append` fails at once with
 * StoreUnavailableError (UNAVAILABLE to the client), so memory never grows with the backlog.
 * A send resolves only after the batch holding it is committed.
 */
import type { Metrics } from "../metrics.ts";
import { StoreUnavailableError, type AppendResult, type MessageStore, type NewMessage } from "./types.ts";

interface Pending {
  msg: NewMessage;
  resolve(r: AppendResult): void;
  reject(e: unknown): void;
}

export interface GroupCommitOptions {
  batchMax: number;
  waitMs?: number;
  queueMax: number;
  metrics?: Pick<Metrics, "storeCommitSeconds" | "storeBatchSize" | "storeQueueDepth" | "storeUp">;
}

export class GroupCommitter {
  private readonly store: MessageStore;
  private readonly opts: GroupCommitOptions;
  private queue: Pending[] = [];
  private committing = false;
  private scheduled = false;
  private closed = false;
  private idle: (() => void)[] = [];

  constructor(store: MessageStore, opts: GroupCommitOptions) {
    this.store = store;
    this.opts = opts;
  }

  /** Queues a message; resolves once it is committed. */
  append(msg: NewMessage): Promise<AppendResult> {
    if (this.closed) return Promise.reject(new StoreUnavailableError("store is closing"));
    if (this.queue.length >= this.opts.queueMax) return Promise.reject(new StoreUnavailableError("store queue is full"));
    return new Promise((resolve, reject) => {
      this.queue.push({ msg, resolve, reject });
      this.opts.metrics?.storeQueueDepth.set(this.queue.length);
      this.schedule();
    });
  }

  /** Sends queued or committing. */
  get pending(): number {
    return this.queue.length + (this.committing ? 1 : 0);
  }

  private schedule(): void {
    if (this.committing || this.scheduled) return;
    this.scheduled = true;
    const run = () => {
      this.scheduled = false;
      void this.commit();
    };
    if (this.opts.waitMs && this.opts.waitMs > 0) setTimeout(run, this.opts.waitMs);
    else setImmediate(run);
  }

  private async commit(): Promise<void> {
    if (this.committing || this.queue.length === 0) return this.settleIdle();
    this.committing = true;
    const batch = this.queue.length <= this.opts.batchMax ? this.queue : this.queue.slice(0, this.opts.batchMax);
    this.queue = batch === this.queue ? [] : this.queue.slice(batch.length);
    const m = this.opts.metrics;
    m?.storeQueueDepth.set(this.queue.length);
    const t0 = performance.now();
    try {
      const results = await this.store.appendBatch(batch.map((p) => p.msg));
      m?.storeCommitSeconds.observe((performance.now() - t0) / 1000);
      m?.storeBatchSize.observe(batch.length);
      m?.storeUp.set(1);
      for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i]!);
    } catch (err) {
      if (err instanceof StoreUnavailableError) m?.storeUp.set(0);
      for (const p of batch) p.reject(err);
    } finally {
      this.committing = false;
      if (this.queue.length > 0) this.schedule();
      else this.settleIdle();
    }
  }

  private settleIdle(): void {
    if (this.queue.length > 0 || this.committing) return;
    const waiters = this.idle;
    this.idle = [];
    for (const w of waiters) w();
  }

  /** Resolves when everything queued so far is committed (or failed). */
  flush(): Promise<void> {
    if (this.queue.length === 0 && !this.committing) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** Refuses new sends and waits for the queued ones. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }
}
