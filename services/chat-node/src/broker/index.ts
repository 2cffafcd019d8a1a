/** Chooses the broker: Redis when REDIS_URL is set, else the in-process twin. */
import type { Config } from "../config.ts";
import type { Metrics } from "../metrics.ts";
import type { Broker } from "./types.ts";
import { LocalBroker } from "./local-broker.ts";

export interface BrokerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export async function createBroker(config: Readonly<Config>, logger: BrokerLogger, metrics: Metrics): Promise<Broker> {
  if (!config.redisUrl) return new LocalBroker();
  const { createRedisBroker } = await import("./redis-broker.ts");
  return createRedisBroker(config, logger, metrics);
}

export type { Broker, PresenceTracker, PresenceListener } from "./types.ts";
