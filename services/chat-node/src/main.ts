/**
 * The node's entry point: load configuration, build, listen, and drain on SIGTERM/SIGINT.
 * A malformed variable stops the node with a message naming it (exit 78, EX_CONFIG); so does a
 * DATA_DIR the store cannot use, and a HOST/PORT that cannot be resolved or assigned.
 */
import { ConfigError, loadConfig, type Config } from "./config.ts";
import { buildApp, type App } from "./app.ts";

/** Prints `configuration error: …` and exits 78 for a ConfigError, matched by name: one from the store's thread is rebuilt as a plain Error. */
function exitOnConfigError(err: unknown): void {
  if (err instanceof ConfigError || (err instanceof Error && err.name === "ConfigError")) {
    console.error(`configuration error: ${err.message}`);
    process.exit(78);
  }
}

/** Listen failures that a different HOST/PORT would fix (exit 78), and what each code means. */
const LISTEN_CONFIG_ERRORS = new Set(["ENOTFOUND", "EAI_AGAIN", "EADDRNOTAVAIL"]);
const LISTEN_REASONS: Record<string, string> = {
  EADDRINUSE: "the port is already in use",
  EACCES: "permission denied (a port below 1024 needs privileges)",
  EADDRNOTAVAIL: "the address is not one of this machine's",
  ENOTFOUND: "the host name does not resolve",
  EAI_AGAIN: "the host name could not be resolved now (DNS)",
};

let config: Readonly<Config>;
try {
  config = loadConfig();
} catch (err) {
  exitOnConfigError(err);
  throw err;
}

let app: App;
try {
  app = await buildApp(config);
} catch (err) {
  exitOnConfigError(err);
  throw err;
}

try {
  await app.listen();
} catch (err) {
  // One line, no stack trace; process.exit because the store's thread and timers would keep the process alive.
  const code = (err as NodeJS.ErrnoException).code;
  const reason = code ? `${code}${LISTEN_REASONS[code] ? ` (${LISTEN_REASONS[code]})` : ""}` : String((err as Error).message ?? err);
  console.error(`cannot listen on HOST=${config.host} PORT=${config.port}: ${reason}`);
  process.exit(code && LISTEN_CONFIG_ERRORS.has(code) ? 78 : 1);
}

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
