/**
 * Redis connections of the broker: REDIS_URL parsing (standalone or Redis Cluster) and clients
 * that never crash the process and never block it when Redis is away.
 *
 * REDIS_URL forms:
 * - `redis://[user:pass@]host:port[/db]` (or `rediss://` for TLS): one Redis server.
 * - `redis://[user:pass@]host:port?cluster=1[&nodes=host2:port2,host3:port3]`: Redis Cluster through
 *   ioredis' `Cluster` client, seeded with `host:port` and the optional extra `nodes`; ioredis finds
 *   the other shards itself (CLUSTER SLOTS). A comma list in the authority is not a valid URL, hence
 *   the query parameters.
 */
import { Cluster, Redis, type RedisOptions } from "ioredis";
import type { RedisTls } from "../config.ts";

export type RedisClient = Redis | Cluster;

export interface RedisTarget {
  cluster: boolean;
  nodes: { host: string; port: number }[];
  options: RedisOptions;
}

/**
 * Parses REDIS_URL (already checked to be a redis:/rediss: URL by the config). With rediss://,
 * `tls` (REDIS_TLS_CA_FILE, REDIS_TLS_SERVERNAME) says whom to trust and which name to check, and
 * REDIS_TLS_CERT_FILE / REDIS_TLS_KEY_FILE give the node's client certificate; the server's
 * certificate is always verified.
 */
export function parseRedisUrl(raw: string, tls?: Readonly<RedisTls>): RedisTarget {
  const url = new URL(raw);
  const options: RedisOptions = {};
  if (url.username) options.username = decodeURIComponent(url.username);
  if (url.password) options.password = decodeURIComponent(url.password);
  if (url.protocol === "rediss:") {
    options.tls = {
      ...(tls?.ca !== undefined ? { ca: tls.ca } : {}),
      ...(tls?.servername !== undefined ? { servername: tls.servername } : {}),
      ...(tls?.cert !== undefined && tls.key !== undefined ? { cert: tls.cert, key: tls.key } : {}),
    };
  }
  const db = url.pathname.replace(/^\//, "");
  if (db !== "") {
    if (!/^[0-9]+$/.test(db)) throw new Error(`REDIS_URL database must be a number, got "${db}"`);
    options.db = Number(db);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1";
  const seed = { host, port: url.port ? Number(url.port) : 6379 };
  const cluster = ["1", "true", "yes"].includes((url.searchParams.get("cluster") ?? "").toLowerCase());
  const nodes = [seed];
  for (const extra of (url.searchParams.get("nodes") ?? "").split(",").filter(Boolean)) {
    const at = extra.lastIndexOf(":");
    const port = at > 0 ? Number(extra.slice(at + 1)) : 6379;
    if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`REDIS_URL nodes holds a bad address "${extra}"`);
    nodes.push({ host: at > 0 ? extra.slice(0, at) : extra, port });
  }
  if (cluster && db !== "") throw new Error("REDIS_URL: Redis Cluster has no databases; drop the /db path");
  return { cluster, nodes, options };
}

export interface ClientRole {
  /** pub: publishes, fails fast while disconnected; sub: subscriber, keeps its subscriptions queued; cmd: presence commands, fail fast. */
  role: "pub" | "sub" | "cmd";
  /** Redis Cluster only: one subscriber per shard for SSUBSCRIBE (the sharded adapter). */
  shardedSubscribers?: boolean;
}

/** Reconnects forever, at most one attempt a second: a Redis outage is waited out, never fatal. */
const retryStrategy = (times: number): number => Math.min(times * 100, 1000);

/**
 * Creates one client. Connection starts at once (lazyConnect off) but nothing awaits it.
 * The publisher and the command client refuse commands while disconnected (no offline queue):
 * a broadcast during an outage reaches local sockets only, which `seq` catch-up covers, and memory
 * stays bounded. The subscriber keeps an offline queue so that the adapter's subscriptions, issued
 * when Socket.IO creates the namespace, are sent once Redis answers (ioredis re-subscribes after
 * every reconnect by itself).
 */
export function createClient(target: RedisTarget, { role, shardedSubscribers = false }: ClientRole, name: string): RedisClient {
  const offline = role === "sub";
  const common: RedisOptions = {
    ...target.options,
    connectionName: name,
    lazyConnect: false,
    connectTimeout: 5000,
    enableOfflineQueue: offline,
    maxRetriesPerRequest: offline ? null : 1,
    ...(role === "cmd" ? { commandTimeout: 2000 } : {}),
  };
  if (target.cluster) {
    return new Cluster(target.nodes, {
      clusterRetryStrategy: retryStrategy,
      enableOfflineQueue: offline,
      shardedSubscribers,
      redisOptions: { ...common },
    });
  }
  const seed = target.nodes[0] ?? { host: "127.0.0.1", port: 6379 };
  return new Redis({ ...common, host: seed.host, port: seed.port, retryStrategy });
}

/**
 * Replaces `method` of `client` by one whose promise never rejects: the adapters call publish and
 * subscribe without a catch, and an unhandled rejection would end the process.
 */
export function neverReject(client: object, method: string, onError: (err: unknown) => void): void {
  const original = Reflect.get(client, method) as unknown;
  if (typeof original !== "function") return;
  Reflect.set(client, method, (...args: unknown[]) => {
    let result: unknown;
    try {
      result = Reflect.apply(original, client, args);
    } catch (err) {
      onError(err);
      return Promise.resolve(0);
    }
    return Promise.resolve(result).catch((err: unknown) => {
      onError(err);
      return 0;
    });
  });
}

/** True when the client is connected and ready for commands. */
export function isReady(client: RedisClient): boolean {
  return client.status === "ready";
}

/** Quits politely when connected, within `timeoutMs`; disconnects otherwise. Never rejects. */
export async function shutdownClient(client: RedisClient, timeoutMs = 1000): Promise<void> {
  if (isReady(client)) {
    const quit = client.quit().catch(() => undefined);
    const timer = new Promise((r) => setTimeout(r, timeoutMs).unref());
    await Promise.race([quit, timer]);
  }
  client.disconnect();
}
