/**
 * Cluster-wide typing transitions in Redis: one user typing in one conversation from sockets on
 * several nodes is one `isTyping: true` and, after the last of them stops, one `false`.
 *
 * Per (conversation, user) a sorted set of the nodes that see the user typing, scored by when
 * their claim lapses (Redis time + TTL). Each node already folds repeated `typing` events into one
 * window (TypingTracker), so Redis sees a node's start and end, and a refresh at most every third
 * of the TTL while the window stays open; never a keystroke. The transition to an empty set, by a node's
 * own end or by removing the claims of a node that died mid-typing, is the one that broadcasts
 * `false`; the transition from empty is the one that broadcasts `true`. Each step is one Lua script
 * on Redis' clock, so two nodes racing cannot both win.
 *
 * A node that dies mid-typing leaves its claim to lapse. When another node holds a claim too, its
 * own end re-asks once the dead claim lapses (`recheck`). When the dead node held the only claim,
 * nobody would: so every key with a claim is also in an index scored by its latest lapse, and every
 * node sweeps the index (`sweep`, twice per TTL); the sweep that empties a key is the one that
 * broadcasts its `false`, once for the cluster, to every socket of the room.
 *
 * The keys and the index share one hash tag (`{typing}`), so that a sweep is one script on one
 * Redis Cluster slot; typing traffic is small (a start, an end and a refresh per TTL/3 per typist).
 *
 * While Redis is unreachable every transition is this node's own (as with a single node): a
 * duplicate `true` is better than a missing one.
 */
import type { TypingArbiter, TypingEnd } from "./types.ts";
import type { RedisClient } from "./redis-connection.ts";

const NOW = `local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** KEYS: the typing key, the index. ARGV: nodeId, ttlMs. Returns 1 when no other node had a live claim (the cluster-wide start). */
const BEGIN = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREM', KEYS[1], ARGV[1])
local others = redis.call('ZCARD', KEYS[1])
local lapse = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], lapse, ARGV[1])
-- The key outlives every claim in it, so that the claim's lapse is seen (and ends the typing).
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
redis.call('ZADD', KEYS[2], 'GT', lapse, KEYS[1])
if others == 0 then return 1 end
return 0`;

/**
 * KEYS: the typing key, the index. ARGV: nodeId (empty: only remove lapsed claims). Returns
 * {ended, ms}: ended is 1 when this call emptied the set (the cluster-wide end), ms how long until
 * the next live claim lapses (-1: none).
 */
const SETTLE = `${NOW}
local removed = 0
if ARGV[1] ~= '' then removed = redis.call('ZREM', KEYS[1], ARGV[1]) end
removed = removed + redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] == nil then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], KEYS[1])
  -- A node's own end that finds no claim at all: Redis lost it (a restart, an outage), so no other
  -- node will end this typing; a missing false would leave it shown for good.
  if removed > 0 or ARGV[1] ~= '' then return {1, -1} end
  return {0, -1}
end
return {0, tonumber(first[2]) - now}`;

/**
 * KEYS: the index. ARGV: how many due keys at most. Removes the lapsed claims of every key whose
 * latest claim has lapsed; returns the keys this call emptied (each one cluster-wide end). A key
 * whose claims were refreshed meanwhile is re-indexed at its latest lapse.
 */
const SWEEP = `${NOW}
local ended = {}
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))) do
  local removed = redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if last[2] == nil then
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], key)
    if removed > 0 then table.insert(ended, key) end
  else
    redis.call('ZADD', KEYS[1], tonumber(last[2]), key)
  end
end
return ended`;

/** KEYS: the typing key. Returns how many claims on it are live. */
const LIVE = `${NOW}
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')`;

const SCRIPTS = { chatTypingBegin: [BEGIN, 2], chatTypingSettle: [SETTLE, 2], chatTypingSweep: [SWEEP, 1], chatTypingLive: [LIVE, 1] } as const;
/** Due keys one sweep handles at most; the rest wait for the next. */
const SWEEP_BATCH = 200;
type ScriptFn = (key: string, ...args: (string | number)[]) => Promise<unknown>;

export interface RedisTypingOptions {
  prefix: string;
  nodeId: string;
  /** How long a claim lives without a refresh: more than the typing window. */
  ttlMs: number;
  onError(op: string, err: unknown): void;
}

export class RedisTyping implements TypingArbiter {
  private readonly redis: RedisClient;
  private readonly o: RedisTypingOptions;

  constructor(redis: RedisClient, o: RedisTypingOptions) {
    this.redis = redis;
    this.o = o;
    for (const [name, [lua, numberOfKeys]] of Object.entries(SCRIPTS)) redis.defineCommand(name, { lua, numberOfKeys });
  }

  /** Half the TTL: a claim that lapsed is swept at most that long after. */
  get sweepEveryMs(): number {
    return Math.floor(this.o.ttlMs / 2);
  }

  /** A third of the TTL: a window refreshed no later than that lapses before its claim does. */
  get refreshAfterMs(): number {
    return Math.floor(this.o.ttlMs / 3);
  }

  private key(conversationId: string, userId: string): string {
    return `${this.o.prefix}:{typing}:${encodeURIComponent(conversationId)}:${encodeURIComponent(userId)}`;
  }

  private get index(): string {
    return `${this.o.prefix}:{typing}:due`;
  }

  private run(name: keyof typeof SCRIPTS, ...args: [string, ...(string | number)[]]): Promise<unknown> {
    return (Reflect.get(this.redis, name) as ScriptFn).apply(this.redis, args);
  }

  async begin(conversationId: string, userId: string): Promise<boolean> {
    try {
      return (await this.run("chatTypingBegin", this.key(conversationId, userId), this.index, this.o.nodeId, this.o.ttlMs)) === 1;
    } catch (err) {
      this.o.onError("typing", err);
      return true;
    }
  }

  async end(conversationId: string, userId: string): Promise<TypingEnd> {
    return this.settle(conversationId, userId, this.o.nodeId);
  }

  async recheck(conversationId: string, userId: string): Promise<TypingEnd> {
    return this.settle(conversationId, userId, "");
  }

  private async settle(conversationId: string, userId: string, nodeId: string): Promise<TypingEnd> {
    try {
      const [ended, ms] = (await this.run("chatTypingSettle", this.key(conversationId, userId), this.index, nodeId)) as [number, number];
      return ms >= 0 ? { ended: ended === 1, recheckInMs: ms } : { ended: ended === 1 };
    } catch (err) {
      this.o.onError("typing", err);
      return { ended: nodeId !== "" };
    }
  }

  async live(conversationId: string, userId: string): Promise<boolean> {
    try {
      return Number(await this.run("chatTypingLive", this.key(conversationId, userId))) > 0;
    } catch (err) {
      this.o.onError("typing", err);
      return true;
    }
  }

  async sweep(): Promise<{ conversationId: string; userId: string }[]> {
    try {
      const keys = (await this.run("chatTypingSweep", this.index, SWEEP_BATCH)) as string[];
      const start = `${this.o.prefix}:{typing}:`.length;
      return keys.flatMap((key) => {
        const [c, u] = key.slice(start).split(":");
        return c !== undefined && u !== undefined ? [{ conversationId: decodeURIComponent(c), userId: decodeURIComponent(u) }] : [];
      });
    } catch (err) {
      this.o.onError("typing", err);
      return [];
    }
  }
}
