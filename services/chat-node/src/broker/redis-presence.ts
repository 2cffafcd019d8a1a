/**
 * Cluster-wide presence in Redis.
 *
 * Per (conversation, user) a sorted set of socket ids scored by their expiry (Redis time + TTL).
 * Each node refreshes the entries of its own live sockets every TTL/3 (the heartbeat), so the
 * entries of a node that died without cleaning up lapse after at most PRESENCE_TTL_MS, and a
 * sweeper announces those users offline. Per conversation a sorted set of users scored by their
 * latest socket expiry answers `online()`; one index of (conversation, user) pairs scored the same
 * way lets the sweeper find lapsed pairs without scanning.
 *
 * Every change is one Lua script reading Redis' own clock (TIME), so nodes need no synchronised
 * clocks and a join racing a leave or a sweep on another node cannot double-count. All presence
 * keys share the hash tag `{presence}`: on Redis Cluster they live in one slot, which keeps the
 * scripts legal (their keys in one slot) at the cost of putting presence on one shard; presence is
 * a few commands per connection and heartbeat, small beside the pub/sub traffic the sharded
 * adapter spreads.
 *
 * While Redis is unreachable, join/leave answer from this node's own sockets (never reject, so a
 * join or a disconnect still completes) and the heartbeat re-writes every local entry once Redis
 * is back, which also rebuilds presence after a Redis restart that lost its data.
 */
import type { PresenceTracker } from "./types.ts";
import type { RedisClient } from "./redis-connection.ts";

const NOW = `local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// KEYS: sockets(conv,user), users(conv), index. Leaves the pair's scores in step with its latest
// live socket; when none is left, removes the pair and returns 1 if the user was listed online.
const SETTLE = `
local function settle(user, member)
  local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if top[2] == nil then
    redis.call('DEL', KEYS[1])
    local had = redis.call('ZREM', KEYS[2], user)
    redis.call('ZREM', KEYS[3], member)
    return had
  end
  redis.call('ZADD', KEYS[2], top[2], user)
  redis.call('ZADD', KEYS[3], top[2], member)
  return 0
end`;

/** ARGV: socketId, ttlMs, keyTtlMs, userId, member. Returns 1 when it is the user's first live socket. */
const JOIN = `${NOW}${SETTLE}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local before = redis.call('ZCARD', KEYS[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
settle(ARGV[4], ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('DEL', KEYS[4])
if before == 0 then return 1 end
return 0`;

/** ARGV: socketId, userId, member. Returns 1 when that was the user's last live socket. */
const LEAVE = `${NOW}${SETTLE}
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return settle(ARGV[2], ARGV[3])`;

/**
 * ARGV: userId, member, keyTtlMs. Removes lapsed sockets; returns 1 when the user thereby went
 * offline, and then marks the pair (KEYS[4]) as announced offline.
 */
const SWEEP = `${NOW}${SETTLE}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local went = settle(ARGV[1], ARGV[2])
if went == 1 then redis.call('SET', KEYS[4], '1', 'PX', ARGV[3]) end
return went`;

/**
 * ARGV: ttlMs, keyTtlMs, userId, member, socketId... Re-writes this node's live sockets of the
 * pair. Returns 1 when a sweep had announced the pair offline meanwhile (this node's heartbeat came
 * late): the user is back and must be announced online again.
 */
const REFRESH = `${NOW}${SETTLE}
local exp = now + tonumber(ARGV[1])
for i = 5, #ARGV do redis.call('ZADD', KEYS[1], exp, ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
settle(ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return redis.call('DEL', KEYS[4])`;

/** KEYS: users(conv). Users with a live socket. */
const ONLINE = `${NOW}
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')`;

/** KEYS: index; ARGV: limit. Pairs whose every socket has lapsed. */
const LAPSED = `${NOW}
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))`;

type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;
const SCRIPTS = { chatPresenceJoin: [JOIN, 4], chatPresenceLeave: [LEAVE, 3], chatPresenceSweep: [SWEEP, 4], chatPresenceRefresh: [REFRESH, 4], chatPresenceOnline: [ONLINE, 1], chatPresenceLapsed: [LAPSED, 1] } as const;
type ScriptName = keyof typeof SCRIPTS;

const enc = encodeURIComponent;

interface LocalPair {
  conversationId: string;
  userId: string;
  sockets: Set<string>;
}

export interface PresenceOptions {
  prefix: string;
  ttlMs: number;
  /** Called on every Redis error (counted and logged by the broker). */
  onError(op: string, err: unknown): void;
}

export class RedisPresence implements PresenceTracker {
  private readonly base: string;
  private readonly keyTtlMs: number;
  /** This node's live sockets per pair: the heartbeat's work list and the fallback while Redis is away. */
  private readonly local = new Map<string, LocalPair>();
  /** Pairs whose join or leave Redis did not hear (an outage): announced to the other nodes once it is back. */
  private readonly missed = new Map<string, { conversationId: string; userId: string }>();

  private readonly redis: RedisClient;
  private readonly opts: PresenceOptions;

  constructor(redis: RedisClient, opts: PresenceOptions) {
    this.redis = redis;
    this.opts = opts;
    this.base = `${opts.prefix}:{presence}`;
    // Keys outlive entries so a silent cluster leaves nothing behind, and never lapse between heartbeats.
    this.keyTtlMs = opts.ttlMs * 4;
    for (const [name, [lua, numberOfKeys]] of Object.entries(SCRIPTS)) redis.defineCommand(name, { lua, numberOfKeys });
  }

  private member(conversationId: string, userId: string): string {
    return `${enc(conversationId)} ${enc(userId)}`;
  }

  private keys(conversationId: string, userId: string): [string, string, string] {
    return [`${this.base}:s:${enc(conversationId)}:${enc(userId)}`, `${this.base}:u:${enc(conversationId)}`, `${this.base}:index`];
  }

  /** The sockets, users and index keys, and the pair's "announced offline by a sweep" marker. */
  private keysWithMarker(conversationId: string, userId: string): [string, string, string, string] {
    return [...this.keys(conversationId, userId), `${this.base}:gone:${enc(conversationId)}:${enc(userId)}`];
  }

  private run(target: object, name: ScriptName, ...args: (string | number)[]): Promise<unknown> {
    return (Reflect.get(target, name) as ScriptFn).apply(target, args);
  }

  async join(conversationId: string, userId: string, socketId: string): Promise<boolean> {
    const member = this.member(conversationId, userId);
    let pair = this.local.get(member);
    if (!pair) this.local.set(member, (pair = { conversationId, userId, sockets: new Set() }));
    const localFirst = pair.sockets.size === 0;
    pair.sockets.add(socketId);
    try {
      const first = await this.run(this.redis, "chatPresenceJoin", ...this.keysWithMarker(conversationId, userId), socketId, this.opts.ttlMs, this.keyTtlMs, userId, member);
      return first === 1;
    } catch (err) {
      this.opts.onError("presence join", err);
      this.missed.set(member, { conversationId, userId });
      return localFirst;
    }
  }

  async leave(conversationId: string, userId: string, socketId: string): Promise<boolean> {
    const member = this.member(conversationId, userId);
    const pair = this.local.get(member);
    const removed = pair?.sockets.delete(socketId) ?? false;
    if (pair && pair.sockets.size === 0) this.local.delete(member);
    try {
      const last = await this.run(this.redis, "chatPresenceLeave", ...this.keys(conversationId, userId), socketId, userId, member);
      return last === 1;
    } catch (err) {
      this.opts.onError("presence leave", err);
      this.missed.set(member, { conversationId, userId });
      return removed && !this.local.has(member);
    }
  }

  async online(conversationId: string): Promise<string[]> {
    try {
      const users = (await this.run(this.redis, "chatPresenceOnline", this.keys(conversationId, "")[1])) as string[];
      return users.sort();
    } catch (err) {
      this.opts.onError("presence online", err);
      const users = [...this.local.values()].filter((p) => p.conversationId === conversationId).map((p) => p.userId);
      return users.sort();
    }
  }

  /**
   * The pairs whose change Redis missed, with their cluster-wide state now (read after this node's
   * heartbeat re-wrote its entries); emptied, so each is told once. Kept for the next recovery when
   * Redis fails again meanwhile.
   */
  async takeMissed(): Promise<{ conversationId: string; userId: string; online: boolean }[]> {
    const pairs = [...this.missed.entries()];
    this.missed.clear();
    const out: { conversationId: string; userId: string; online: boolean }[] = [];
    const byConversation = new Map<string, string[]>();
    try {
      for (const [, p] of pairs) {
        let users = byConversation.get(p.conversationId);
        if (!users) byConversation.set(p.conversationId, (users = (await this.run(this.redis, "chatPresenceOnline", this.keys(p.conversationId, "")[1])) as string[]));
        out.push({ ...p, online: users.includes(p.userId) });
      }
    } catch (err) {
      this.opts.onError("presence online", err);
      for (const [member, p] of pairs) this.missed.set(member, p);
      return [];
    }
    return out;
  }

  /**
   * Re-writes every local entry with a fresh expiry, in pipelines of `chunk` pairs. Returns the
   * pairs a sweep had announced offline while this node's heartbeat was late: they are back.
   */
  async heartbeat(chunk = 500): Promise<{ conversationId: string; userId: string }[]> {
    const pairs = [...this.local.values()].filter((p) => p.sockets.size > 0);
    const back: { conversationId: string; userId: string }[] = [];
    for (let i = 0; i < pairs.length; i += chunk) {
      const batch = pairs.slice(i, i + chunk);
      const pipeline = this.redis.pipeline();
      for (const p of batch) {
        this.run(pipeline, "chatPresenceRefresh", ...this.keysWithMarker(p.conversationId, p.userId), this.opts.ttlMs, this.keyTtlMs, p.userId, this.member(p.conversationId, p.userId), ...p.sockets);
      }
      const results = (await pipeline.exec()) ?? [];
      const failed = results.find(([err]) => err);
      if (failed) throw failed[0];
      results.forEach(([, came], k) => {
        const p = batch[k];
        if (came === 1 && p) back.push({ conversationId: p.conversationId, userId: p.userId });
      });
    }
    return back;
  }

  /**
   * Removes lapsed entries (sockets of nodes that died) and returns the pairs that thereby went
   * offline, at most `limit` per call. Callers hold the sweep lock.
   */
  async sweep(limit = 500): Promise<{ conversationId: string; userId: string }[]> {
    const lapsed = (await this.run(this.redis, "chatPresenceLapsed", `${this.base}:index`, limit)) as string[];
    // All of a batch at once: the commands leave back to back, not one round trip per pair.
    const settled = await Promise.all(
      lapsed.map(async (member) => {
        const [c, u] = member.split(" ");
        if (c === undefined || u === undefined) return undefined;
        const conversationId = decodeURIComponent(c);
        const userId = decodeURIComponent(u);
        const went = await this.run(this.redis, "chatPresenceSweep", ...this.keysWithMarker(conversationId, userId), userId, member, this.keyTtlMs);
        return went === 1 ? { conversationId, userId } : undefined;
      }),
    );
    return settled.filter((p): p is { conversationId: string; userId: string } => p !== undefined);
  }

  /** How many lapsed pairs one `sweep` call looks at. */
  static readonly SWEEP_BATCH = 500;

  /** Takes the cluster-wide sweep lock for `ms`; true when this node got it. */
  async lock(owner: string, ms: number): Promise<boolean> {
    return (await this.redis.set(`${this.base}:sweep-lock`, owner, "PX", ms, "NX")) === "OK";
  }

  /** Number of local (conversation, user) pairs, for tests and logs. */
  get localPairs(): number {
    return this.local.size;
  }
}
