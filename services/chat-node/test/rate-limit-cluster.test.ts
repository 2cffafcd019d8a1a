/**
 * The rate limiter module (src/rate-limit.ts) on its own: its token buckets, a join's after-the-fact
 * cost, and the cluster-wide budgets against a real Redis, with two limiters standing for two nodes.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { eventually, sleep, startRedis, stopAll, type RedisHandle } from "@chat/test-kit";
import { AppError } from "../src/errors.ts";
import { TokenBuckets, clusterWindow, createRateLimiter, type RateLimiter, type Scope } from "../src/rate-limit.ts";

/** True when the check passes, false when it is RATE_LIMITED (anything else fails the test). */
function allowed(limiter: RateLimiter, scope: Scope, userId: string, cost?: number): boolean {
  try {
    limiter.check(scope, userId, cost);
    return true;
  } catch (err) {
    assert.ok(err instanceof AppError && err.code === "RATE_LIMITED", String(err));
    assert.ok((err.retryAfter ?? 0) >= 1);
    return false;
  }
}

describe("token buckets", () => {
  it("allow the burst, then the rate, and forget full buckets", () => {
    let t = 0;
    const b = new TokenBuckets({ perSec: 2, burst: 3 }, () => t);
    assert.deepEqual([b.take("u"), b.take("u"), b.take("u")], [0, 0, 0]);
    assert.equal(b.take("u"), 0.5, "half a second until the next token");
    t = 500;
    assert.equal(b.take("u"), 0);
    assert.equal(b.take("other"), 0, "per key");
    t = 10_000;
    b.sweep();
    assert.equal(b.size, 0);
  });

  it("a cost of several tokens, and a charge that puts the bucket in debt (a join's catch-up)", () => {
    let t = 0;
    const b = new TokenBuckets({ perSec: 1, burst: 10 }, () => t);
    assert.equal(b.take("u", 4), 0);
    b.charge("u", 30);
    assert.equal(b.take("u"), 11, "debt bounded at one burst: -10, so 11 s until one token");
    t = 11_000;
    assert.equal(b.take("u"), 0);
  });

  it("the cluster window holds the burst in whole seconds", () => {
    assert.deepEqual(clusterWindow({ perSec: 20, burst: 40 }), { points: 40, duration: 2 });
    assert.deepEqual(clusterWindow({ perSec: 0.2, burst: 5 }), { points: 5, duration: 25 });
    assert.deepEqual(clusterWindow({ perSec: 100, burst: 10 }), { points: 100, duration: 1 });
  });

  it("a limiter without Redis refuses past the burst with retryAfter, per user and per scope", () => {
    const scopes: Scope[] = [];
    const l = createRateLimiter({ disabled: false, buckets: { join: { perSec: 0.5, burst: 2 } } }, (s) => scopes.push(s));
    try {
      assert.deepEqual([allowed(l, "join", "a"), allowed(l, "join", "a"), allowed(l, "join", "a")], [true, true, false]);
      assert.ok(allowed(l, "join", "b"));
      assert.ok(allowed(l, "leave", "a"), "another scope has its own bucket");
      assert.deepEqual(scopes, ["join"]);
      assert.equal(l.clusterWide, false);
      assert.deepEqual(l.buckets.send, { perSec: 20, burst: 40 }, "scopes not given take their defaults");
    } finally {
      l.close();
    }
  });

  it("RATE_LIMIT_DISABLED allows everything", () => {
    const l = createRateLimiter({ disabled: true, buckets: { send: { perSec: 0.001, burst: 1 } } });
    for (let i = 0; i < 100; i++) assert.ok(allowed(l, "send", "a"));
  });
});

describe("cluster-wide budgets through Redis", () => {
  let redis: RedisHandle;
  const clients: Redis[] = [];
  const limiters: RateLimiter[] = [];
  const client = () => {
    const c = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100, lazyConnect: false });
    c.on("error", () => {});
    clients.push(c);
    return c;
  };
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    for (const l of limiters) l.close();
    for (const c of clients) c.disconnect();
    await stopAll();
  });

  const node = (prefix: string, hooks: Parameters<typeof createRateLimiter>[1] = {}) => {
    const l = createRateLimiter({ disabled: false, buckets: { send: { perSec: 0.1, burst: 10 } }, redis: client(), keyPrefix: prefix, syncMs: 10 }, hooks);
    limiters.push(l);
    return l;
  };

  it("a user spread over two nodes gets one budget, not two", async () => {
    const a = node("t1");
    const b = node("t1");
    const probe = client();
    await eventually(() => probe.status === "ready", 5000, "redis client ready");
    assert.equal(a.clusterWide, true);
    // Six on each node: each node's own bucket (10) allows them all.
    for (let i = 0; i < 6; i++) assert.ok(allowed(a, "send", "spread"));
    for (let i = 0; i < 6; i++) assert.ok(allowed(b, "send", "spread"));
    await eventually(async () => Number(await probe.get("t1:rl:send:spread")) >= 12, 5000, "both nodes settled with Redis");
    // Past the budget (10 per 100 s window): each node refuses after at most one more that it
    // allowed before its next settlement, although its own bucket still holds tokens.
    let more = 0;
    for (const l of [a, b]) {
      const refused = await eventually(async () => {
        if (allowed(l, "send", "spread")) more++;
        else return true;
        await sleep(30);
        return false;
      }, 5000, "the node refuses");
      assert.ok(refused);
    }
    assert.ok(more <= 2, `at most one more per node past the budget, got ${more}`);
    // Another user, and the same user on another scope, are not affected.
    assert.ok(allowed(a, "send", "other"));
    assert.ok(allowed(b, "typing", "spread"));
  });

  it("a node alone still has its full local budget (the cluster budget does not shrink it)", async () => {
    const a = node("t2");
    await eventually(() => clients.at(-1)!.status === "ready", 5000, "ready");
    let ok = 0;
    for (let i = 0; i < 12; i++) if (allowed(a, "send", "solo")) ok++;
    assert.equal(ok, 10);
  });

  it("when Redis goes away the node falls back to its local buckets and says so, and returns to cluster-wide limits", async () => {
    const errors: unknown[] = [];
    const states: boolean[] = [];
    const a = node("t3", { onSyncError: (e) => errors.push(e), onClusterState: (up) => states.push(up) });
    await eventually(() => clients.at(-1)!.status === "ready", 5000, "ready");
    const port = redis.port;
    await redis.stop();
    // Local limits still hold: the burst, then refusals.
    let ok = 0;
    for (let i = 0; i < 12; i++) {
      if (allowed(a, "send", "offline")) ok++;
      await sleep(15);
    }
    assert.equal(ok, 10);
    await eventually(() => errors.length > 0 && states.includes(false), 5000, "the fallback reported");
    redis = await startRedis(port);
    await eventually(() => clients.every((c) => c.status === "ready"), 15_000, "clients reconnected");
    await eventually(() => {
      allowed(a, "send", `back-${Date.now()}`);
      return states.at(-1) === true;
    }, 10_000, "cluster-wide again");
  });
});
