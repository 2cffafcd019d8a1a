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
 * While Redis is unreachable every transition is this node's own (as with a single node): a
 * duplicate `true` is better than a missing one.
 */
import type { TypingArbiter, TypingEnd } from "./types.ts";
import type { RedisClient } from "./redis-connection.ts";

const NOW = `local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** ARGV: nodeId, ttlMs. Returns 1 when no other node had a live claim (the cluster-wide start). */
const BEGIN = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREM', KEYS[1], ARGV[1])
local others = redis.call('ZCARD', KEYS[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
-- The key outlives every claim in it, so that the claim's lapse is seen (and ends the typing).
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
if others == 0 then return 1 end
return 0`;

/**
 * ARGV: nodeId (empty: only remove lapsed claims). Returns {ended, ms}: ended is 1 when this call
 * emptied the set (the cluster-wide end), ms how long until the next live claim lapses (-1: none).
 */
const SETTLE = `${NOW}
local removed = 0
if ARGV[1] ~= '' then removed = redis.call('ZREM', KEYS[1], ARGV[1]) end
removed = removed + redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] == nil then
  redis.call('DEL', KEYS[1])
  if removed > 0 then return {1, -1} end
  return {0, -1}
end
return {0, tonumber(first[2]) - now}`;

const SCRIPTS = { chatTypingBegin: BEGIN, chatTypingSettle: SETTLE } as const;
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
    for (const [name, lua] of Object.entries(SCRIPTS)) redis.defineCommand(name, { lua, numberOfKeys: 1 });
  }

  /** A third of the TTL: a window refreshed no later than that lapses before its claim does. */
  get refreshAfterMs(): number {
    return Math.floor(this.o.ttlMs / 3);
  }

  private key(conversationId: string, userId: string): string {
    return `${this.o.prefix}:typing:${encodeURIComponent(conversationId)}:${encodeURIComponent(userId)}`;
  }

  private run(name: keyof typeof SCRIPTS, ...args: [string, ...(string | number)[]]): Promise<unknown> {
    return (Reflect.get(this.redis, name) as ScriptFn).apply(this.redis, args);
  }

  async begin(conversationId: string, userId: string): Promise<boolean> {
    try {
      return (await this.run("chatTypingBegin", this.key(conversationId, userId), this.o.nodeId, this.o.ttlMs)) === 1;
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
      const [ended, ms] = (await this.run("chatTypingSettle", this.key(conversationId, userId), nodeId)) as [number, number];
      return ms >= 0 ? { ended: ended === 1, recheckInMs: ms } : { ended: ended === 1 };
    } catch (err) {
      this.o.onError("typing", err);
      return { ended: nodeId !== "" };
    }
  }
}
