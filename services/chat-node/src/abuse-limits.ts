/**
 * The node's abuse limits, composed from configuration: the per-user rate limits (rate-limit.ts)
 * and the per-user connection cap (connection-cap.ts), both cluster-wide over one Redis command
 * connection of their own when REDIS_URL is set, each falling back to the node's own count while
 * Redis cannot be asked (chat_rate_limit_cluster_wide, chat_rate_limit_fallbacks_total).
 * docs/security.md describes every limit.
 */
import type { Logger } from "pino";
import type { ServerLimits } from "@chat/protocol";
import type { Config } from "./config.ts";
import type { Metrics } from "./metrics.ts";
import { createRateLimiter, type RateLimiter } from "./rate-limit.ts";
import { createConnectionCap, type ConnectionCap } from "./connection-cap.ts";
import { createClient, parseRedisUrl, type RedisClient } from "./broker/redis-connection.ts";

export interface AbuseLimits {
  limiter: RateLimiter;
  connectionCap: ConnectionCap;
  /** What `GET /limits` adds about them. */
  describe(): Pick<ServerLimits, "maxConnectionsPerUser" | "rateLimits">;
  close(): Promise<void>;
}

export function createAbuseLimits(config: Readonly<Config>, logger: Logger, metrics: Metrics): AbuseLimits {
  let redis: RedisClient | undefined;
  if (config.redisUrl) {
    redis = createClient(parseRedisUrl(config.redisUrl, config.redisTls), { role: "cmd" }, `${config.nodeId}-limits`);
    // The broker reports Redis outages; here they only mean "decide locally", counted below.
    redis.on("error", () => {});
  }
  // One warning per outage, not one per refused settlement.
  let warned = false;
  const fellBack = (what: "rate_limit" | "connection_cap", err: unknown) => {
    metrics.rateLimitFallbacks.inc({ what });
    if (!warned) logger.warn({ err, what }, "Redis cannot be asked: limits are per node until it answers");
    warned = true;
  };
  const limiter = createRateLimiter(
    { disabled: config.rateLimitDisabled, buckets: config.rates, redis, keyPrefix: config.redisKeyPrefix, syncMs: config.rateLimitSyncMs },
    {
      onLimited: (scope) => metrics.rateLimited.inc({ scope }),
      onSyncError: (err) => fellBack("rate_limit", err),
      onClusterState: (up) => {
        metrics.rateLimitClusterWide.set(up ? 1 : 0);
        if (up) {
          warned = false;
          logger.info("rate limits are cluster-wide again");
        }
      },
    },
  );
  const connectionCap = createConnectionCap({
    max: config.maxConnectionsPerUser,
    redis,
    keyPrefix: config.redisKeyPrefix,
    nodeId: config.nodeId,
    ttlMs: config.presenceTtlMs,
    onFallback: (err) => fellBack("connection_cap", err),
  });
  return {
    limiter,
    connectionCap,
    describe: () => ({
      maxConnectionsPerUser: config.maxConnectionsPerUser,
      rateLimits: { disabled: config.rateLimitDisabled, clusterWide: limiter.clusterWide, scopes: { ...limiter.buckets } },
    }),
    async close() {
      limiter.close();
      await connectionCap.close();
      redis?.disconnect();
    },
  };
}
