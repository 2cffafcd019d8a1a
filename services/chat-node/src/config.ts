/**
 * Configuration: parsed from the environment once, at start-up, into a frozen typed object.
 * Nothing else reads `process.env`. A malformed value throws a ConfigError naming its variable.
 * The README's configuration table mirrors CONFIG_VARIABLES below; a test keeps them in step.
 */
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export class ConfigError extends Error {
  override name = "ConfigError";
}

type Env = Record<string, string | undefined>;

/** A per-user token bucket: `perSec` tokens refill each second, up to `burst`. */
export interface Bucket {
  perSec: number;
  burst: number;
}

export interface Config {
  nodeEnv: string;
  port: number;
  host: string;
  nodeId: string;
  jwtSecret: string;
  corsOrigins: string[];
  redisUrl: string | undefined;
  redisAdapter: "classic" | "sharded";
  redisKeyPrefix: string;
  mongoUrl: string | undefined;
  mongoDb: string;
  mongoWriteConcern: "majority" | number;
  dataDir: string;
  sqliteSynchronous: "FULL" | "NORMAL";
  typingTimeoutMs: number;
  maxMessageLength: number;
  shutdownTimeoutMs: number;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  maxConnections: number;
  socketMaxBufferBytes: number;
  socketMaxOutgoingBytes: number;
  presenceTtlMs: number;
  storeBatchMax: number;
  storeBatchWaitMs: number;
  storeQueueMax: number;
  rateLimitDisabled: boolean;
  broadcastDirectWrite: boolean;
  rateSend: Bucket;
  rateTyping: Bucket;
  rateRestWrite: Bucket;
  rateRestRead: Bucket;
  devTokens: boolean;
  webDir: string | undefined;
}

/** The secret of a node started without JWT_SECRET outside production (it warns); `pnpm token` and `pnpm loadtest` fall back to it too. */
export const DEV_SECRET = "dev-only-secret-change-me-dev-only-secret";

/** Every variable the node reads, with its default, as documented in the README. */
export const CONFIG_VARIABLES = [
  "NODE_ENV", "PORT", "HOST", "NODE_ID", "JWT_SECRET", "CORS_ORIGINS",
  "REDIS_URL", "REDIS_ADAPTER", "REDIS_KEY_PREFIX",
  "MONGO_URL", "MONGO_DB", "MONGO_WRITE_CONCERN",
  "DATA_DIR", "SQLITE_SYNCHRONOUS",
  "TYPING_TIMEOUT_MS", "MAX_MESSAGE_LENGTH", "SHUTDOWN_TIMEOUT_MS", "LOG_LEVEL",
  "MAX_CONNECTIONS", "SOCKET_MAX_BUFFER_BYTES", "SOCKET_MAX_OUTGOING_BYTES", "PRESENCE_TTL_MS",
  "STORE_BATCH_MAX", "STORE_BATCH_WAIT_MS", "STORE_QUEUE_MAX",
  "RATE_LIMIT_DISABLED", "BROADCAST_DIRECT_WRITE",
  "RATE_SEND_PER_SEC", "RATE_SEND_BURST", "RATE_TYPING_PER_SEC", "RATE_TYPING_BURST",
  "RATE_REST_WRITE_PER_SEC", "RATE_REST_WRITE_BURST", "RATE_REST_READ_PER_SEC", "RATE_REST_READ_BURST",
  "DEV_TOKENS", "WEB_DIR",
] as const;

/**
 * Numbers are plain decimal (surrounding whitespace aside): digits, and for `num` an optional
 * fraction (`0.5`). No variable takes a negative value, so a sign is refused (`-0` would otherwise
 * be read as 0: `PORT=-0` listening on any free port), as are Number()'s other forms (`0x10`,
 * `1e3`, `+5`, `.5`, `Infinity`).
 */
function int(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return def;
  if (!/^[0-9]+$/.test(raw.trim())) throw new ConfigError(`${name} must be an integer (decimal digits), got "${raw}"`);
  const n = Number(raw.trim());
  if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function num(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return def;
  if (!/^[0-9]+(?:\.[0-9]+)?$/.test(raw.trim())) throw new ConfigError(`${name} must be a decimal number such as 0.5 or 20, got "${raw}"`);
  const n = Number(raw.trim());
  if (n < min || n > max) throw new ConfigError(`${name} must be a number from ${min} to ${max}, got "${raw}"`);
  return n;
}

function bool(env: Env, name: string, def: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return def;
  const v = raw.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(v)) return true;
  if (["0", "false", "no", "off"].includes(v)) return false;
  throw new ConfigError(`${name} must be one of 1, 0, true, false, yes, no, on, off, got "${raw}"`);
}

/** SOCKET_MAX_OUTGOING_BYTES: 0 (no bound) or at least 64 KiB, so that one catch-up page never trips it. */
function outgoingLimit(env: Env): number {
  const n = int(env, "SOCKET_MAX_OUTGOING_BYTES", 8 * 1024 * 1024, 0, 1 << 30);
  if (n !== 0 && n < 65_536) throw new ConfigError(`SOCKET_MAX_OUTGOING_BYTES must be 0 (no bound) or at least 65536, got ${n}`);
  return n;
}

function oneOf<T extends string>(env: Env, name: string, def: T, allowed: readonly T[]): T {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return def;
  const v = raw.trim() as T;
  if (!allowed.includes(v)) throw new ConfigError(`${name} must be one of ${allowed.join(", ")}, got "${raw}"`);
  return v;
}

function url(env: Env, name: string, protocols: readonly string[]): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw.trim());
  } catch {
    throw new ConfigError(`${name} is not a valid URL`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(`${name} must use ${protocols.join(" or ")}, got "${parsed.protocol}"`);
  }
  return raw.trim();
}

/**
 * CORS_ORIGINS: a comma-separated list of `*` or origins (`scheme://host[:port]`, http or https,
 * nothing after it). Unset or blank: the default. A list with no entry at all (`,`) is refused.
 */
function corsOrigins(env: Env): string[] {
  const raw = env.CORS_ORIGINS;
  if (raw === undefined || raw.trim() === "") return ["http://localhost:3000"];
  const entries = raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (entries.length === 0) throw new ConfigError(`CORS_ORIGINS holds no origin, got "${raw}"`);
  for (const entry of entries) {
    if (entry === "*") continue;
    const parsed = URL.parse(entry);
    const what = `CORS_ORIGINS holds "${entry}", which is not`;
    if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
      const withScheme = URL.parse(`http://${entry}`);
      const hint = !entry.includes("//") && withScheme?.origin === `http://${entry}` ? `: did you mean "http://${entry}"?` : ` such as "http://localhost:3000", or *`;
      throw new ConfigError(`${what} an http(s) origin${hint}`);
    }
    if (parsed.origin === entry) continue;
    if (entry.endsWith("/") && parsed.origin === entry.slice(0, -1)) {
      throw new ConfigError(`${what} an origin: an origin has no trailing slash, write "${parsed.origin}"`);
    }
    throw new ConfigError(`${what} an origin (scheme://host[:port] only, no path, query or credentials, lower-case host): did you mean "${parsed.origin}"?`);
  }
  return entries;
}

/** HOST: an IPv4 or IPv6 address (no brackets), or an RFC 1123 host name. */
function host(env: Env): string {
  const h = env.HOST?.trim() || "0.0.0.0";
  if (net.isIP(h) !== 0) return h;
  const label = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
  if (h.length <= 253 && h.split(".").every((l) => label.test(l))) return h;
  const hint = h.startsWith("[") && h.endsWith("]") && net.isIP(h.slice(1, -1)) === 6 ? `: write the IPv6 address without brackets, "${h.slice(1, -1)}"` : "";
  throw new ConfigError(`HOST must be an IP address or a host name, got "${env.HOST}"${hint}`);
}

/**
 * MONGO_WRITE_CONCERN: `majority`, or a number of members from 1 to 50 (a replica set's most).
 * 0 (unacknowledged writes) is refused: a message is acknowledged only once it is stored.
 */
function writeConcern(env: Env): "majority" | number {
  const wc = env.MONGO_WRITE_CONCERN?.trim() || "majority";
  if (wc === "majority") return "majority";
  if (!/^[0-9]+$/.test(wc)) throw new ConfigError(`MONGO_WRITE_CONCERN must be "majority" or a number of members, got "${wc}"`);
  const n = Number(wc);
  if (n === 0) {
    throw new ConfigError(`MONGO_WRITE_CONCERN=${wc} means unacknowledged writes, and a message is acknowledged only once it is stored: use "majority" or a number from 1`);
  }
  if (n > 50) throw new ConfigError(`MONGO_WRITE_CONCERN must be "majority" or a number from 1 to 50 (a replica set's most members), got ${wc}`);
  return n;
}

/**
 * WEB_DIR: unset, the built page is served when it exists and the node runs without one otherwise;
 * set, it must be a directory holding a readable index.html, or the node does not start.
 */
function webDir(env: Env): string | undefined {
  const raw = env.WEB_DIR?.trim();
  if (!raw) return undefined;
  const dir = path.resolve(raw);
  const fail = (reason: string) => new ConfigError(`WEB_DIR "${dir}" cannot be served: ${reason}`);
  const why = (err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "ENOENT" || code === "ENOTDIR" ? "it does not exist" : (code ?? String(err));
  };
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch (err) {
    throw fail(why(err));
  }
  if (!stat.isDirectory()) throw fail("it is not a directory");
  const index = path.join(dir, "index.html");
  try {
    if (!fs.statSync(index).isFile()) throw fail("its index.html is not a file");
    fs.accessSync(index, fs.constants.R_OK);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const reason = why(err);
    throw fail(reason === "it does not exist" ? "it holds no index.html" : `its index.html cannot be read (${reason})`);
  }
  return dir;
}

function bucket(env: Env, prefix: string, perSec: number, burst: number): Bucket {
  return {
    perSec: num(env, `${prefix}_PER_SEC`, perSec, 0.001, 1_000_000),
    burst: int(env, `${prefix}_BURST`, burst, 1, 1_000_000),
  };
}

/** Parses and validates the environment. Throws ConfigError naming the first bad variable. */
export function loadConfig(env: Env = process.env): Readonly<Config> {
  // Case-insensitive: "Production" and "prod" are production too, never a development node by accident.
  let nodeEnv = env.NODE_ENV?.trim().toLowerCase() || "development";
  if (nodeEnv === "prod") nodeEnv = "production";
  const production = nodeEnv === "production";
  // Development tokens are on by default only where a developer runs the node: anything else (staging, ci, ...) opts in.
  const devTokensByDefault = ["development", "test"].includes(nodeEnv);

  // The secret is used as given; only the check ignores surrounding whitespace, so "   …" cannot pass for 16 characters.
  const jwtSecret = env.JWT_SECRET ?? "";
  if (jwtSecret === "" && production) throw new ConfigError("JWT_SECRET is required when NODE_ENV=production");
  if (jwtSecret !== "" && jwtSecret.trim() === "") throw new ConfigError("JWT_SECRET is only whitespace: set a secret of at least 16 characters");
  if (jwtSecret !== "" && jwtSecret.trim().length < 16) {
    throw new ConfigError("JWT_SECRET must be at least 16 characters, not counting leading and trailing whitespace");
  }

  const devTokens = bool(env, "DEV_TOKENS", devTokensByDefault);
  if (devTokens && production) throw new ConfigError("DEV_TOKENS cannot be enabled when NODE_ENV=production");

  const nodeId = env.NODE_ID?.trim() || `${os.hostname()}-${process.pid}`;
  if (!/^[A-Za-z0-9._:-]{1,64}$/.test(nodeId)) throw new ConfigError("NODE_ID must be 1-64 of [A-Za-z0-9._:-]");

  const keyPrefix = env.REDIS_KEY_PREFIX?.trim() || "chat";
  if (!/^[A-Za-z0-9._:-]{1,64}$/.test(keyPrefix)) throw new ConfigError("REDIS_KEY_PREFIX must be 1-64 of [A-Za-z0-9._:-]");

  const config: Config = {
    nodeEnv,
    port: int(env, "PORT", 3001, 0, 65535),
    host: host(env),
    nodeId,
    jwtSecret: jwtSecret || DEV_SECRET,
    corsOrigins: corsOrigins(env),
    redisUrl: url(env, "REDIS_URL", ["redis:", "rediss:"]),
    redisAdapter: oneOf(env, "REDIS_ADAPTER", "classic", ["classic", "sharded"] as const),
    redisKeyPrefix: keyPrefix,
    mongoUrl: url(env, "MONGO_URL", ["mongodb:", "mongodb+srv:"]),
    mongoDb: env.MONGO_DB?.trim() || "chat",
    mongoWriteConcern: writeConcern(env),
    dataDir: path.resolve(env.DATA_DIR?.trim() || "data"),
    sqliteSynchronous: oneOf(env, "SQLITE_SYNCHRONOUS", "FULL", ["FULL", "NORMAL"] as const),
    typingTimeoutMs: int(env, "TYPING_TIMEOUT_MS", 3000, 50, 600_000),
    maxMessageLength: int(env, "MAX_MESSAGE_LENGTH", 4000, 1, 1_000_000),
    shutdownTimeoutMs: int(env, "SHUTDOWN_TIMEOUT_MS", 10_000, 100, 600_000),
    logLevel: oneOf(env, "LOG_LEVEL", "info", ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const),
    maxConnections: int(env, "MAX_CONNECTIONS", 20_000, 1, 10_000_000),
    socketMaxBufferBytes: int(env, "SOCKET_MAX_BUFFER_BYTES", 65_536, 1024, 100_000_000),
    socketMaxOutgoingBytes: outgoingLimit(env),
    presenceTtlMs: int(env, "PRESENCE_TTL_MS", 30_000, 1000, 3_600_000),
    storeBatchMax: int(env, "STORE_BATCH_MAX", 512, 1, 100_000),
    storeBatchWaitMs: int(env, "STORE_BATCH_WAIT_MS", 0, 0, 1000),
    storeQueueMax: int(env, "STORE_QUEUE_MAX", 20_000, 1, 10_000_000),
    rateLimitDisabled: bool(env, "RATE_LIMIT_DISABLED", false),
    broadcastDirectWrite: bool(env, "BROADCAST_DIRECT_WRITE", true),
    rateSend: bucket(env, "RATE_SEND", 20, 40),
    rateTyping: bucket(env, "RATE_TYPING", 10, 20),
    rateRestWrite: bucket(env, "RATE_REST_WRITE", 10, 20),
    rateRestRead: bucket(env, "RATE_REST_READ", 50, 100),
    devTokens,
    webDir: webDir(env),
  };
  if (config.maxMessageLength * 4 + 1024 > config.socketMaxBufferBytes) {
    throw new ConfigError(
      `SOCKET_MAX_BUFFER_BYTES (${config.socketMaxBufferBytes}) must hold a MAX_MESSAGE_LENGTH message: at least ${config.maxMessageLength * 4 + 1024}`,
    );
  }
  return Object.freeze(config);
}

/** True when the node runs with the development secret, which the node warns about. */
export function usesDevSecret(config: Config): boolean {
  return config.jwtSecret === DEV_SECRET;
}
