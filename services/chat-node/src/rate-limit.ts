/**
 * Per-user rate limits, one token bucket per scope (config.ts RATE_SCOPES), and, when Redis is
 * configured, one budget per user and scope for the whole cluster.
 *
 * The hybrid, and why: a Redis round trip awaited on every check would put ~0.1-0.3 ms and a Redis
 * command on every send and typing event (docs/security.md measures it), so the decision stays
 * local and synchronous:
 *
 * 1. A user the cluster has refused (see 3) is refused at once, until the cluster's window ends.
 * 2. The node's own token bucket decides (burst, then `perSec`), refilled lazily: no timer per user.
 *    It is also what protects this node when Redis is away.
 * 3. What the bucket allowed is added up per user and scope and settled with Redis every
 *    RATE_LIMIT_SYNC_MS, in one batch (rate-limiter-flexible's RateLimiterRedis: an atomic INCRBY
 *    with a TTL per user, scope and window; the window is `burst / perSec` seconds, at least one,
 *    holding `burst` points). When the cluster-wide count is past the budget, step 1 refuses that
 *    user on this node until the window ends; every other node learns the same at its next sync.
 *
 * So a user's rate over a window is the same on 1 node or 10; a user spread over N nodes can go past
 * it by what N nodes allow locally within one sync interval (and, once, by N - 1 local bursts before
 * the first sync sees them). When Redis fails or is not ready, the sync is skipped (`onSyncError`,
 * a metric) and each node applies its local bucket only, as without Redis, until Redis answers.
 *
 * `check` is synchronous (throws RATE_LIMITED with `retryAfter`); `charge` adds a cost known only
 * afterwards (a join's catch-up: 1 point to join, 1 more per 50 messages returned) and never throws.
 */
import { ErrorCode } from "@chat/protocol";
import { RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import type { Cluster, Redis } from "ioredis";
import { RATE_DEFAULTS, RATE_SCOPES, type Bucket, type RateScope } from "./config.ts";
import { AppError } from "./errors.ts";

export type Scope = RateScope;
export { RATE_SCOPES };

interface State {
  tokens: number;
  at: number;
}

export class TokenBuckets {
  private readonly buckets = new Map<string, State>();
  private readonly spec: Bucket;
  private readonly now: () => number;

  constructor(spec: Bucket, now: () => number = () => performance.now()) {
    this.spec = spec;
    this.now = now;
  }

  private refill(key: string, t: number): State {
    const s = this.buckets.get(key);
    if (!s) {
      const fresh = { tokens: this.spec.burst, at: t };
      this.buckets.set(key, fresh);
      return fresh;
    }
    s.tokens = Math.min(this.spec.burst, s.tokens + ((t - s.at) / 1000) * this.spec.perSec);
    s.at = t;
    return s;
  }

  /** Takes `cost` tokens for `key`; returns 0 when allowed, or the seconds until they are available. */
  take(key: string, cost = 1): number {
    const t = this.now();
    const s = this.refill(key, t);
    if (s.tokens >= cost) {
      s.tokens -= cost;
      return 0;
    }
    return (cost - s.tokens) / this.spec.perSec;
  }

  /** Takes `cost` tokens whatever is left: the bucket may go into debt, down to minus one burst. */
  charge(key: string, cost: number): void {
    const s = this.refill(key, this.now());
    s.tokens = Math.max(-this.spec.burst, s.tokens - cost);
  }

  /** Forgets buckets that have refilled completely; they would start full anyway. */
  sweep(): void {
    const t = this.now();
    for (const [k, s] of this.buckets) {
      if (s.tokens + ((t - s.at) / 1000) * this.spec.perSec >= this.spec.burst) this.buckets.delete(k);
    }
  }

  get size(): number {
    return this.buckets.size;
  }
}

export interface RateLimiter {
  /** Throws AppError(RATE_LIMITED) with `retryAfter` (seconds) when the user has no `cost` tokens left. */
  check(scope: Scope, userId: string, cost?: number): void;
  /** Adds a cost known after the fact; never throws (the next check pays for it). */
  charge(scope: Scope, userId: string, cost: number): void;
  /** The buckets in force (for GET /limits and the docs). */
  readonly buckets: Readonly<Record<Scope, Readonly<Bucket>>>;
  /** True when a Redis client was given: budgets are settled cluster-wide. */
  readonly clusterWide: boolean;
  close(): void;
}

export interface RateLimiterHooks {
  onLimited?(scope: Scope): void;
  /** A sync with Redis failed: the node applies its local buckets only until one succeeds. */
  onSyncError?(err: unknown): void;
  /** Cluster-wide limiting works (true) or the node fell back to its local buckets (false); on changes only. */
  onClusterState?(up: boolean): void;
}

export interface RateLimiterOptions {
  disabled: boolean;
  /** Scopes left out take their defaults (config.ts RATE_DEFAULTS). */
  buckets: Partial<Record<Scope, Bucket>>;
  /** ioredis client (or Cluster) for cluster-wide budgets; none: per node only. */
  redis?: Redis | Cluster;
  /** Prefix of the Redis keys (REDIS_KEY_PREFIX); keys are `<prefix>:rl:<scope>:<userId>`. */
  keyPrefix?: string;
  /** How often the node settles with Redis (RATE_LIMIT_SYNC_MS). */
  syncMs?: number;
}

/** The cluster-wide window of a bucket: whole seconds (Redis TTLs), at least one, holding at least `burst` points. */
export function clusterWindow(b: Bucket): { points: number; duration: number } {
  const duration = Math.max(1, Math.ceil(b.burst / b.perSec));
  return { points: Math.max(b.burst, Math.floor(b.perSec * duration)), duration };
}

const limited = (scope: Scope, waitSec: number) =>
  new AppError(ErrorCode.RATE_LIMITED, `too many ${scope.replaceAll("_", " ")} requests`, { retryAfter: Math.max(1, Math.ceil(waitSec)) });

export function createRateLimiter(opts: RateLimiterOptions, hooksOrOnLimited: RateLimiterHooks | ((scope: Scope) => void) = {}): RateLimiter {
  const hooks: RateLimiterHooks = typeof hooksOrOnLimited === "function" ? { onLimited: hooksOrOnLimited } : hooksOrOnLimited;
  const buckets = Object.freeze(
    Object.fromEntries(RATE_SCOPES.map((s) => [s, Object.freeze({ ...(opts.buckets[s] ?? { perSec: RATE_DEFAULTS[s].perSec, burst: RATE_DEFAULTS[s].burst }) })])) as Record<Scope, Bucket>,
  );
  if (opts.disabled) return { check() {}, charge() {}, buckets, clusterWide: false, close() {} };

  const local = Object.fromEntries(RATE_SCOPES.map((s) => [s, new TokenBuckets(buckets[s])])) as Record<Scope, TokenBuckets>;
  const sync = opts.redis ? createClusterSync(opts.redis, opts.keyPrefix ?? "chat", opts.syncMs ?? 50, buckets, hooks) : undefined;
  const sweeper = setInterval(() => {
    for (const s of RATE_SCOPES) local[s].sweep();
    sync?.sweep();
  }, 30_000);
  sweeper.unref();

  return {
    buckets,
    clusterWide: Boolean(sync),
    check(scope, userId, cost = 1) {
      const blockedSec = sync?.blockedFor(scope, userId) ?? 0;
      if (blockedSec > 0) {
        hooks.onLimited?.(scope);
        throw limited(scope, blockedSec);
      }
      const wait = local[scope].take(userId, cost);
      if (wait > 0) {
        hooks.onLimited?.(scope);
        throw limited(scope, wait);
      }
      sync?.add(scope, userId, cost);
    },
    charge(scope, userId, cost) {
      if (!(cost > 0)) return;
      local[scope].charge(userId, cost);
      sync?.add(scope, userId, cost);
    },
    close() {
      clearInterval(sweeper);
      sync?.close();
    },
  };
}

interface ClusterSync {
  add(scope: Scope, userId: string, points: number): void;
  /** Seconds this user stays refused because the cluster's budget is spent; 0 when not. */
  blockedFor(scope: Scope, userId: string): number;
  sweep(): void;
  close(): void;
}

function createClusterSync(redis: Redis | Cluster, prefix: string, syncMs: number, buckets: Record<Scope, Bucket>, hooks: RateLimiterHooks): ClusterSync {
  const budgets = Object.fromEntries(
    RATE_SCOPES.map((s) => [
      s,
      // rejectIfRedisNotReady: while ioredis reconnects, fail at once instead of queueing in its offline queue.
      new RateLimiterRedis({ storeClient: redis, keyPrefix: `${prefix}:rl:${s}`, ...clusterWindow(buckets[s]), rejectIfRedisNotReady: true }),
    ]),
  ) as Record<Scope, RateLimiterRedis>;
  const pending = new Map<Scope, Map<string, number>>();
  const blocked = new Map<Scope, Map<string, number>>();
  for (const s of RATE_SCOPES) {
    pending.set(s, new Map());
    blocked.set(s, new Map());
  }
  let timer: NodeJS.Timeout | undefined;
  let flushing = false;
  let closed = false;
  let up = true;

  const setUp = (next: boolean) => {
    if (next === up) return;
    up = next;
    hooks.onClusterState?.(next);
  };

  const schedule = () => {
    if (timer || flushing || closed) return;
    timer = setTimeout(flush, syncMs);
    timer.unref();
  };

  async function flush(): Promise<void> {
    timer = undefined;
    flushing = true;
    const batch: { scope: Scope; userId: string; points: number }[] = [];
    for (const [scope, m] of pending) {
      for (const [userId, points] of m) batch.push({ scope, userId, points });
      m.clear();
    }
    const results = await Promise.allSettled(batch.map((b) => budgets[b.scope].consume(b.userId, b.points)));
    let failure: unknown;
    const now = performance.now();
    results.forEach((r, i) => {
      if (r.status === "fulfilled") return;
      const b = batch[i]!;
      if (r.reason instanceof RateLimiterRes) blocked.get(b.scope)!.set(b.userId, now + r.reason.msBeforeNext);
      else failure = r.reason;
    });
    if (failure !== undefined) hooks.onSyncError?.(failure);
    if (batch.length > 0) setUp(failure === undefined);
    flushing = false;
    if ([...pending.values()].some((m) => m.size > 0)) schedule();
  }

  return {
    add(scope, userId, points) {
      const m = pending.get(scope)!;
      m.set(userId, (m.get(userId) ?? 0) + points);
      schedule();
    },
    blockedFor(scope, userId) {
      const m = blocked.get(scope)!;
      if (m.size === 0) return 0;
      const until = m.get(userId);
      if (until === undefined) return 0;
      const left = until - performance.now();
      if (left > 0) return left / 1000;
      m.delete(userId);
      return 0;
    },
    sweep() {
      const now = performance.now();
      for (const m of blocked.values()) for (const [k, until] of m) if (until <= now) m.delete(k);
    },
    close() {
      closed = true;
      clearTimeout(timer);
      timer = undefined;
    },
  };
}
