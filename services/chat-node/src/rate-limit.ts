/**
 * Per-user token buckets, one map per scope, in the node's memory (limits are per node: a user
 * spread over N nodes gets up to N times the rate, which sticky balancing makes rare). Buckets
 * refill lazily on use, so there is no timer per user; idle full buckets are swept periodically.
 */
import { ErrorCode } from "@chat/protocol";
import type { Bucket } from "./config.ts";
import { AppError } from "./errors.ts";

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

  /** Takes one token for `key`; returns 0 when allowed, or the seconds until one is available. */
  take(key: string): number {
    const t = this.now();
    const s = this.buckets.get(key);
    if (!s) {
      this.buckets.set(key, { tokens: this.spec.burst - 1, at: t });
      return 0;
    }
    s.tokens = Math.min(this.spec.burst, s.tokens + ((t - s.at) / 1000) * this.spec.perSec);
    s.at = t;
    if (s.tokens >= 1) {
      s.tokens -= 1;
      return 0;
    }
    return (1 - s.tokens) / this.spec.perSec;
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

export type Scope = "send" | "typing" | "rest_write" | "rest_read";

export interface RateLimiter {
  /** Throws AppError(RATE_LIMITED) with `retryAfter` (seconds) when the user's bucket is empty. */
  check(scope: Scope, userId: string): void;
  close(): void;
}

export function createRateLimiter(
  opts: { disabled: boolean; buckets: Record<Scope, Bucket> },
  onLimited: (scope: Scope) => void,
): RateLimiter {
  if (opts.disabled) return { check() {}, close() {} };
  const maps = {
    send: new TokenBuckets(opts.buckets.send),
    typing: new TokenBuckets(opts.buckets.typing),
    rest_write: new TokenBuckets(opts.buckets.rest_write),
    rest_read: new TokenBuckets(opts.buckets.rest_read),
  } satisfies Record<Scope, TokenBuckets>;
  const sweeper = setInterval(() => Object.values(maps).forEach((m) => m.sweep()), 30_000);
  sweeper.unref();
  return {
    check(scope, userId) {
      const wait = maps[scope].take(userId);
      if (wait > 0) {
        onLimited(scope);
        throw new AppError(ErrorCode.RATE_LIMITED, `too many ${scope.replace("_", " ")} requests`, { retryAfter: Math.max(1, Math.ceil(wait)) });
      }
    },
    close() {
      clearInterval(sweeper);
    },
  };
}
