/**
 * The node's entry point: load configuration, build, listen, and drain on SIGTERM/SIGINT.
 * A malformed variable stops the node with a message naming it (exit 78, EX_CONFIG).
 */
import { ConfigError, loadConfig, type Config } from "./config.ts";
import { buildApp } from "./app.ts";

let config: Readonly<Config>;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`configuration error: ${err.message}`);
    process.exit(78);
  }
  throw err;
}

const app = await buildApp(config);
await app.listen();

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  app.fastify.log.info({ signal }, "shutting down");
  const timer = setTimeout(() => {
    app.fastify.log.error({ timeoutMs: config.shutdownTimeoutMs }, "shutdown timed out");
    process.exit(1);
  }, config.shutdownTimeoutMs);
  timer.unref();
  try {
    await app.shutdown();
    process.exit(0);
  } catch (err) {
    app.fastify.log.error({ err }, "shutdown failed");
    process.exit(1);
  }
}
process.on("SIGTERM", () => void stop("SIGTERM"));
process.on("SIGINT", () => void stop("SIGINT"));
