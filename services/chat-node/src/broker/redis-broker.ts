/**
 * The cluster broker: Socket.IO's Redis adapter (classic or sharded Pub/Sub) on ioredis, and
 * presence in Redis (redis-presence.ts). Three connections: a publisher, a subscriber and a command
 * client for presence, each with an `error` listener (an EventEmitter without one throws, which
 * would end the node at the first Redis outage).
 *
 * Redis being away never stops the node: connecting is not awaited beyond a short grace, the
 * clients reconnect forever, publishes fail fast and are counted (the adapter still delivers to
 * this node's sockets, and clients recover the rest through `seq`), and `ping()` rejects naming
 * Redis so that /readyz answers 503.
 *
 * REDIS_ADAPTER=classic: `createAdapter`, PUBLISH/PSUBSCRIBE; every node receives every broadcast.
 * REDIS_ADAPTER=sharded: `createShardedAdapter`, Redis 7 SPUBLISH/SSUBSCRIBE with a channel per
 * room ("dynamic" mode), so a node receives only broadcasts for rooms it has sockets in, and on a
 * Redis Cluster channels spread over the shards. docs/cluster.md says which to pick.
 */
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { Cluster } from "ioredis";
import type { ServerOptions } from "socket.io";
import type { Config } from "../config.ts";
import type { Metrics } from "../metrics.ts";
import type { Broker, PresenceListener } from "./types.ts";
import { createClient, isReady, neverReject, parseRedisUrl, shutdownClient, type RedisClient } from "./redis-connection.ts";
import { RedisPresence } from "./redis-presence.ts";
import { RedisTyping } from "./redis-typing.ts";

export interface BrokerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const PUBLISH_METHODS = ["publish", "spublish"];
const SUBSCRIBE_METHODS = ["subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe"];

function describe(err: unknown): string {
  if (err instanceof Error) return (err as NodeJS.ErrnoException).code ? `${(err as NodeJS.ErrnoException).code}: ${err.message}` : err.message;
  return String(err);
}

export class RedisBroker implements Broker {
  readonly kind = "redis" as const;
  readonly adapter: ServerOptions["adapter"];
  readonly presence: RedisPresence;
  readonly typing: RedisTyping;
  private readonly clients: Record<"pub" | "sub" | "cmd", RedisClient>;
  private readonly timers: NodeJS.Timeout[] = [];
  private lastError = "not connected yet";
  private closed = false;
  private onPresence: PresenceListener | undefined;
  private readonly recoveredListeners: (() => void)[] = [];
  private readonly downListeners: (() => void)[] = [];
  /** Set when a connection drops after having been ready: its recovery is announced. */
  private wasDown = false;
  /** Operations whose failure is already logged; cleared once every connection is ready again, so an outage logs once, not per retry. */
  private readonly loggedDown = new Set<string>();

  private readonly config: Readonly<Config>;
  private readonly logger: BrokerLogger;
  private readonly metrics: Metrics;

  constructor(config: Readonly<Config>, logger: BrokerLogger, metrics: Metrics) {
    this.config = config;
    this.logger = logger;
    this.metrics = metrics;
    const target = parseRedisUrl(config.redisUrl ?? "", config.redisTls);
    const sharded = config.redisAdapter === "sharded";
    const name = (role: string) => `${config.redisKeyPrefix}:${config.nodeId}:${role}`;
    this.clients = {
      pub: createClient(target, { role: "pub" }, name("pub")),
      sub: createClient(target, { role: "sub", shardedSubscribers: sharded }, name("sub")),
      cmd: createClient(target, { role: "cmd" }, name("cmd")),
    };
    metrics.redisUp.set(0);
    for (const [role, client] of Object.entries(this.clients)) this.watch(role, client);
    for (const m of PUBLISH_METHODS) neverReject(this.clients.pub, m, (err) => this.fail("publish", err));
    for (const m of SUBSCRIBE_METHODS) neverReject(this.clients.sub, m, (err) => this.fail("subscribe", err));

    const channel = `${config.redisKeyPrefix}:sio`;
    this.adapter = sharded
      ? createShardedAdapter(this.clients.pub, this.clients.sub, { channelPrefix: channel, subscriptionMode: "dynamic" })
      : createAdapter(this.clients.pub, this.clients.sub, { key: channel, publishOnSpecificResponseChannel: true });
    this.presence = new RedisPresence(this.clients.cmd, {
      prefix: config.redisKeyPrefix,
      ttlMs: config.presenceTtlMs,
      onError: (op, err) => this.fail(op, err),
    });
    // A claim lives two typing windows and is refreshed after two thirds of one: it outlives the window it stands for.
    this.typing = new RedisTyping(this.clients.cmd, {
      prefix: config.redisKeyPrefix,
      nodeId: config.nodeId,
      ttlMs: config.typingTimeoutMs * 2,
      onError: (op, err) => this.fail(op, err),
    });
  }

  private watch(role: string, client: RedisClient): void {
    client.on("error", (err: unknown) => this.fail(`${role} connection`, err));
    client.on("node error", (err: unknown) => this.fail(`${role} cluster node`, err));
    client.on("ready", () => {
      this.updateUp();
      if (this.allReady() && this.loggedDown.size > 0) {
        this.logger.info({ failed: [...this.loggedDown] }, "redis connections recovered");
        this.loggedDown.clear();
      }
      // After an outage (or a Redis restart that lost its data), re-announce this node's presence at once.
      if (role === "cmd") this.heartbeat();
      if (this.wasDown && this.allReady()) {
        this.wasDown = false;
        for (const l of this.recoveredListeners) l();
      }
    });
    for (const ev of ["close", "end", "reconnecting"]) {
      client.on(ev, () => {
        if (!this.closed && !this.wasDown) {
          this.wasDown = true;
          for (const l of this.downListeners) l();
        }
        this.updateUp();
      });
    }
  }

  private allReady(): boolean {
    return Object.values(this.clients).every(isReady);
  }

  private updateUp(): void {
    this.metrics.redisUp.set(this.allReady() ? 1 : 0);
  }

  /** Counts an error and logs it once per outage and operation. */
  private fail(op: string, err: unknown): void {
    if (this.closed) return;
    this.metrics.brokerPublishErrors.inc();
    this.lastError = `${op}: ${describe(err)}`;
    if (!this.loggedDown.has(op)) {
      this.loggedDown.add(op);
      this.logger.warn({ op, err: describe(err) }, "redis error (logged once until it recovers)");
    }
  }

  async ping(): Promise<void> {
    const down = Object.entries(this.clients).filter(([, c]) => !isReady(c));
    if (down.length > 0) {
      throw new Error(`Redis unavailable (${down.map(([r, c]) => `${r} ${c.status}`).join(", ")}; last error ${this.lastError})`);
    }
    let state: string | undefined;
    try {
      await this.clients.cmd.ping();
      // A Redis Cluster with a shard away still answers PING, but refuses every key (CLUSTERDOWN).
      if (this.clients.cmd instanceof Cluster) state = /cluster_state:(\w+)/.exec(String(await this.clients.cmd.cluster("INFO")))?.[1];
    } catch (err) {
      throw new Error(`Redis unavailable: ${describe(err)}`, { cause: err });
    }
    if (state !== undefined && state !== "ok") throw new Error(`Redis Cluster unavailable: cluster_state:${state} (a shard is unreachable)`);
  }

  start(onPresence: PresenceListener): void {
    this.onPresence = onPresence;
    const every = Math.max(250, Math.floor(this.config.presenceTtlMs / 3));
    const jitter = () => Math.floor(Math.random() * Math.min(250, every / 4));
    this.timers.push(setInterval(() => this.heartbeat(), every));
    this.timers.push(setInterval(() => void this.sweep(every), every + jitter()));
    for (const t of this.timers) t.unref();
  }

  onRecovered(listener: () => void): void {
    this.recoveredListeners.push(listener);
  }

  onDown(listener: () => void): void {
    this.downListeners.push(listener);
  }

  async missedPresence(): Promise<{ conversationId: string; userId: string; online: boolean }[]> {
    // After this node's entries are back in Redis (the heartbeat on the command connection's `ready`).
    try {
      await this.presence.heartbeat();
    } catch (err) {
      this.fail("presence heartbeat", err);
    }
    return this.presence.takeMissed();
  }

  private heartbeat(): void {
    if (this.closed || !isReady(this.clients.cmd)) return;
    this.presence.heartbeat().then(
      (back) => {
        for (const { conversationId, userId } of back) {
          this.logger.info({ conversationId, userId }, "presence back (this node's heartbeat came after a sweep)");
          this.notify(conversationId, userId, true);
        }
      },
      (err: unknown) => this.fail("presence heartbeat", err),
    );
  }

  private notify(conversationId: string, userId: string, online: boolean): void {
    try {
      this.onPresence?.(conversationId, userId, online);
    } catch (err) {
      this.logger.error({ err: describe(err) }, "presence listener failed");
    }
  }

  private async sweep(lockMs: number): Promise<void> {
    if (this.closed || !isReady(this.clients.cmd)) return;
    try {
      // One sweeper per period across the cluster; if it dies, the lock lapses and another takes over.
      if (!(await this.presence.lock(this.config.nodeId, Math.max(100, lockMs - 50)))) return;
      // Batch after batch while the lock holds: a dead node's users, however many, go offline in this period.
      const until = Date.now() + lockMs * 0.8;
      for (let full = true; full && Date.now() < until && !this.closed; ) {
        const batch = await this.presence.sweep(RedisPresence.SWEEP_BATCH);
        full = batch.length > 0;
        for (const { conversationId, userId } of batch) {
          this.logger.info({ conversationId, userId }, "presence lapsed (its node stopped heart-beating)");
          this.notify(conversationId, userId, false);
        }
      }
    } catch (err) {
      this.fail("presence sweep", err);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    await Promise.all(Object.values(this.clients).map((c) => shutdownClient(c)));
    this.metrics.redisUp.set(0);
  }
}

/** Waits up to `graceMs` for every connection, so a healthy start is ready at once; never rejects. */
async function settle(broker: RedisBroker, graceMs: number): Promise<void> {
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    try {
      await broker.ping();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Creates the Redis broker. Resolves even when Redis is unreachable: the node starts not ready. */
export async function createRedisBroker(config: Readonly<Config>, logger: BrokerLogger, metrics: Metrics): Promise<Broker> {
  const broker = new RedisBroker(config, logger, metrics);
  await settle(broker, 1500);
  try {
    await broker.ping();
    logger.info({ adapter: config.redisAdapter }, "redis broker connected");
  } catch (err) {
    logger.warn({ err: describe(err) }, "redis broker not connected yet: the node starts not ready and keeps retrying");
  }
  return broker;
}
