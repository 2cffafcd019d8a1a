/**
 * MAX_CONNECTIONS_PER_USER's module (src/connection-cap.ts): per node without Redis, cluster-wide
 * against a real Redis with caps standing for nodes, a dead node's sockets expiring, and the local
 * fallback while Redis is down.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { eventually, startRedis, stopAll, type RedisHandle } from "@chat/test-kit";
import { createConnectionCap, type ConnectionCap } from "../src/connection-cap.ts";

describe("per-user connection cap", () => {
  it("without Redis: per node, released sockets make room", async () => {
    const cap = createConnectionCap({ max: 2, nodeId: "n1" });
    assert.deepEqual([await cap.admit("u"), await cap.admit("u"), await cap.admit("u")], [true, true, false]);
    assert.ok(await cap.admit("v"), "another user is not affected");
    cap.release("u");
    assert.equal(cap.localCount("u"), 1);
    assert.ok(await cap.admit("u"));
    cap.release("nobody");
    await cap.close();
  });

  describe("with Redis", () => {
    let redis: RedisHandle;
    const clients: Redis[] = [];
    const caps: ConnectionCap[] = [];
    const client = () => {
      const c = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
      c.on("error", () => {});
      clients.push(c);
      return c;
    };
    const node = async (nodeId: string, o: { max?: number; ttlMs?: number; onFallback?: (err: unknown) => void; redis?: Redis } = {}) => {
      const r = o.redis ?? client();
      await eventually(() => r.status === "ready", 5000, "redis ready");
      const cap = createConnectionCap({ max: o.max ?? 3, nodeId, redis: r, keyPrefix: "capt", ttlMs: o.ttlMs ?? 30_000, onFallback: o.onFallback });
      caps.push(cap);
      return cap;
    };
    before(async () => {
      redis = await startRedis();
    });
    after(async () => {
      for (const c of caps) await c.close();
      for (const c of clients) c.disconnect();
      await stopAll();
    });

    it("counts a user's sockets on every node together", async () => {
      const a = await node("a");
      const b = await node("b");
      assert.ok(await a.admit("alice"));
      assert.ok(await a.admit("alice"));
      assert.ok(await b.admit("alice"));
      assert.equal(await b.admit("alice"), false, "the fourth, on another node, is refused");
      assert.equal(await a.admit("alice"), false);
      a.release("alice");
      await eventually(async () => {
        const ok = await b.admit("alice");
        if (ok) return true;
        return false;
      }, 5000, "room after a release on the other node");
      assert.equal(b.localCount("alice"), 2);
      // Admissions racing on two nodes never pass the cap together.
      const results = await Promise.all([...Array.from({ length: 5 }, () => a.admit("race")), ...Array.from({ length: 5 }, () => b.admit("race"))]);
      assert.equal(results.filter(Boolean).length, 3);
    });

    it("a node that dies without releasing stops counting after the TTL, while a live node keeps its sockets", async () => {
      const deadClient = client();
      const dead = await node("dead", { ttlMs: 600, redis: deadClient });
      const live = await node("live", { ttlMs: 600, max: 2 });
      assert.ok(await dead.admit("bob"));
      assert.ok(await live.admit("bob"));
      assert.equal(await live.admit("bob"), false);
      deadClient.disconnect(); // the node is gone: no renewal, no release
      // The live node renews its own member (every TTL/3): after the dead one's expiry, one place frees.
      await eventually(() => live.admit("bob"), 10_000, "the dead node's socket expired");
      assert.equal(await live.admit("bob"), false, "the live node's renewed sockets still count");
    });

    it("falls back to the node's own count while Redis is down, and says so", async () => {
      const fallbacks: unknown[] = [];
      const c = await node("solo", { max: 2, onFallback: (e) => fallbacks.push(e) });
      const port = redis.port;
      await redis.stop();
      await eventually(() => clients.some((r) => r.status !== "ready"), 5000, "clients see Redis gone");
      assert.deepEqual([await c.admit("carol"), await c.admit("carol"), await c.admit("carol")], [true, true, false]);
      assert.ok(fallbacks.length >= 2, "each admission decided locally was reported");
      c.release("carol");
      c.release("carol");
      redis = await startRedis(port);
      await eventually(() => clients.filter((r) => r.status !== "end").every((r) => r.status === "ready"), 15_000, "reconnected");
      const before = fallbacks.length;
      assert.ok(await c.admit("carol"));
      assert.equal(fallbacks.length, before, "decided by Redis again");
    });
  });
});
