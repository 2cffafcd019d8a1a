/**
 * MAX_CONNECTIONS_PER_USER: how many sockets one user may hold, so that one token cannot take a
 * node's MAX_CONNECTIONS from everyone else. Cluster-wide when Redis is configured, per node
 * otherwise.
 *
 * In Redis each user has one sorted set, `<prefix>:conn:<userId>`, whose members are this node's
 * admitted sockets (`<nodeId>:<n>`) scored by when they expire. Admission is one Lua script on that
 * single key (so it works on a Redis Cluster too): drop expired members, refuse when the rest reach
 * the cap, add the new one; it reads Redis's clock, so the nodes' clocks do not matter. Each node
 * renews its members every `ttlMs / 3`; a node that dies without releasing its sockets stops
 * counting after `ttlMs` (PRESENCE_TTL_MS, the same bound as its users' presence).
 *
 * When Redis fails, is not ready, or does not answer within `timeoutMs`, the node decides alone
 * from its own sockets (`onFallback`, a metric), and admits by the same cap per node.
 */
import type { Cluster, Redis } from "ioredis";

export interface ConnectionCap {
  /** True when the user may open one more socket; the caller then owes one release(). */
  admit(userId: string): Promise<boolean>;
  /** One of the user's admitted sockets closed. */
  release(userId: string): void;
  /** The user's sockets admitted by this node. */
  localCount(userId: string): number;
  readonly max: number;
  /** Stops renewing and removes this node's members from Redis. */
  close(): Promise<void>;
}

export interface ConnectionCapOptions {
  max: number;
  redis?: Redis | Cluster;
  keyPrefix?: string;
  nodeId: string;
  /** How long a member counts without renewal (default 30 s). */
  ttlMs?: number;
  /** Longest wait for Redis before deciding locally (default 1 s). */
  timeoutMs?: number;
  /** Redis could not be asked: the decision was local. */
  onFallback?(err: unknown): void;
}

const ADMIT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

const RENEW = `
local t = redis.call('TIME')
local score = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', score, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`;

type CapRedis = (Redis | Cluster) & {
  chatConnAdmit(key: string, max: string, ttl: string, member: string): Promise<number>;
  chatConnRenew(key: string, ttl: string, ...members: string[]): Promise<number>;
};

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export function createConnectionCap(o: ConnectionCapOptions): ConnectionCap {
  const ttlMs = o.ttlMs ?? 30_000;
  const timeoutMs = o.timeoutMs ?? 1000;
  const prefix = o.keyPrefix ?? "chat";
  const key = (userId: string) => `${prefix}:conn:${userId}`;
  // Per user: this node's admitted sockets, each with its Redis member (undefined: admitted locally).
  const held = new Map<string, (string | undefined)[]>();
  let seq = 0;
  const redis = o.redis as CapRedis | undefined;
  if (redis && typeof redis.chatConnAdmit !== "function") {
    redis.defineCommand("chatConnAdmit", { numberOfKeys: 1, lua: ADMIT });
    redis.defineCommand("chatConnRenew", { numberOfKeys: 1, lua: RENEW });
  }

  const hold = (userId: string, member: string | undefined) => {
    const list = held.get(userId);
    if (list) list.push(member);
    else held.set(userId, [member]);
  };

  async function renew(): Promise<void> {
    if (!redis || redis.status !== "ready") return;
    const work: Promise<unknown>[] = [];
    for (const [userId, members] of held) {
      const inRedis = members.filter((m): m is string => m !== undefined);
      if (inRedis.length > 0) work.push(redis.chatConnRenew(key(userId), String(ttlMs), ...inRedis));
    }
    const results = await Promise.allSettled(work);
    const failed = results.find((r) => r.status === "rejected");
    if (failed) o.onFallback?.(failed.reason);
  }
  const renewer = redis ? setInterval(() => void renew(), Math.max(100, Math.floor(ttlMs / 3))) : undefined;
  renewer?.unref();

  return {
    max: o.max,
    async admit(userId) {
      const mine = held.get(userId)?.length ?? 0;
      if (mine >= o.max) return false;
      if (redis) {
        const member = `${o.nodeId}:${++seq}`;
        try {
          if (redis.status !== "ready") throw new Error(`Redis is ${redis.status}`);
          const ok = await withTimeout(redis.chatConnAdmit(key(userId), String(o.max), String(ttlMs), member), timeoutMs);
          if (ok !== 1) return false;
          hold(userId, member);
          return true;
        } catch (err) {
          o.onFallback?.(err);
          // A timed-out admission may still land in Redis: it expires after ttlMs, never renewed.
        }
      }
      if ((held.get(userId)?.length ?? 0) >= o.max) return false;
      hold(userId, undefined);
      return true;
    },
    release(userId) {
      const list = held.get(userId);
      if (!list || list.length === 0) return;
      // Locally admitted ones first: they hold no place in Redis.
      const i = list.lastIndexOf(undefined);
      const [member] = list.splice(i >= 0 ? i : list.length - 1, 1);
      if (list.length === 0) held.delete(userId);
      if (member !== undefined && redis && redis.status === "ready") {
        redis.zrem(key(userId), member).catch((err: unknown) => o.onFallback?.(err));
      }
    },
    localCount(userId) {
      return held.get(userId)?.length ?? 0;
    },
    async close() {
      if (renewer) clearInterval(renewer);
      if (redis && redis.status === "ready") {
        const work = [...held].flatMap(([userId, members]) => {
          const inRedis = members.filter((m): m is string => m !== undefined);
          return inRedis.length > 0 ? [redis.zrem(key(userId), ...inRedis)] : [];
        });
        await withTimeout(Promise.allSettled(work), timeoutMs).catch(() => undefined);
      }
      held.clear();
    },
  };
}
