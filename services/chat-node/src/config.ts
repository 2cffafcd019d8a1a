/**
 * Configuration: parsed from the environment once, at start-up, into a frozen typed object.
 * Nothing else reads `process.env`. A malformed value throws a ConfigError naming its variable.
 * The README's configuration table mirrors CONFIG_VARIABLES below; a test keeps them in step.
 */
import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
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

/**
 * What each rate limit counts, per user (cluster-wide when Redis is configured): the socket events,
 * the REST operations, the handshake. `rest_read`/`rest_write` bound every REST call of that kind
 * on top of the operation's own scope. docs/security.md says what each one protects.
 */
export const RATE_SCOPES = [
  "handshake", "join", "leave", "typing", "stop_typing", "send", "history", "presence",
  "conversation_create", "token", "rest_read", "rest_write",
] as const;
export type RateScope = (typeof RATE_SCOPES)[number];

/** Each scope's variable prefix (`<PREFIX>_PER_SEC`, `<PREFIX>_BURST`) and default bucket. */
export const RATE_DEFAULTS: Readonly<Record<RateScope, Readonly<{ variable: string } & Bucket>>> = Object.freeze({
  handshake: { variable: "RATE_HANDSHAKE", perSec: 1, burst: 20 },
  join: { variable: "RATE_JOIN", perSec: 10, burst: 100 },
  leave: { variable: "RATE_LEAVE", perSec: 10, burst: 40 },
  typing: { variable: "RATE_TYPING", perSec: 10, burst: 20 },
  stop_typing: { variable: "RATE_STOP_TYPING", perSec: 10, burst: 20 },
  send: { variable: "RATE_SEND", perSec: 20, burst: 40 },
  history: { variable: "RATE_HISTORY", perSec: 20, burst: 50 },
  presence: { variable: "RATE_PRESENCE", perSec: 10, burst: 30 },
  conversation_create: { variable: "RATE_CONVERSATION_CREATE", perSec: 0.5, burst: 10 },
  token: { variable: "RATE_TOKEN", perSec: 0.2, burst: 5 },
  rest_read: { variable: "RATE_REST_READ", perSec: 50, burst: 100 },
  rest_write: { variable: "RATE_REST_WRITE", perSec: 10, burst: 20 },
});

/** The token algorithms a node accepts. `none` and the other JOSE algorithms are never accepted. */
export const JWT_ALGORITHMS = ["HS256", "RS256", "ES256"] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

/** How tokens are verified (auth.ts). */
export interface JwtSettings {
  /** Accepted `alg` values: HS256 is checked against `secret` only, RS256/ES256 against public keys only. */
  algorithms: readonly JwtAlgorithm[];
  /** The HS256 secret (JWT_SECRET, or the development secret with DEV_INSECURE_TOKENS). */
  secret: string | undefined;
  /** JWT_PUBLIC_KEY_FILE when it holds one PEM key or certificate. */
  publicKey: KeyObject | undefined;
  /** JWT_PUBLIC_KEY_FILE when it holds a JWK Set (keys chosen by `kid`). */
  localJwks: { keys: Record<string, unknown>[] } | undefined;
  jwksUrl: string | undefined;
  jwksTimeoutMs: number;
  jwksCooldownMs: number;
  jwksCacheMaxAgeMs: number;
  issuer: readonly string[] | undefined;
  audience: readonly string[] | undefined;
  clockToleranceSec: number;
}

/** TLS to Redis (rediss://): whom to trust and which name the server's certificate must carry. */
export interface RedisTls {
  /** PEM certificates to trust instead of the system's (a private CA); undefined: the system's. */
  ca: string | undefined;
  /** The name checked against the certificate (and sent as SNI); undefined: the URL's host. */
  servername: string | undefined;
  /** REDIS_TLS_CERT_FILE / REDIS_TLS_KEY_FILE: this node's client certificate, for a Redis that verifies its clients (`tls-auth-clients yes`). */
  cert: string | undefined;
  key: string | undefined;
}

export interface Config {
  nodeEnv: string;
  port: number;
  host: string;
  nodeId: string;
  jwt: Readonly<JwtSettings>;
  corsOrigins: string[];
  redisUrl: string | undefined;
  /** rediss:// only: REDIS_TLS_CA_FILE's certificates (PEM) and REDIS_TLS_SERVERNAME; undefined with redis://. */
  redisTls: Readonly<RedisTls> | undefined;
  redisAdapter: "classic" | "sharded";
  redisKeyPrefix: string;
  mongoUrl: string | undefined;
  mongoDb: string;
  mongoWriteConcern: "majority" | number;
  /** MONGO_ALLOW_LOSING_ACKNOWLEDGED: a numeric MONGO_WRITE_CONCERN was accepted knowingly. */
  mongoAllowLosingAcknowledged: boolean;
  dataDir: string;
  sqliteSynchronous: "FULL" | "NORMAL";
  /** SQLITE_THREAD: where the embedded store commits, its own worker thread (default) or the main thread. */
  sqliteThread: "worker" | "main";
  typingTimeoutMs: number;
  maxMessageLength: number;
  shutdownTimeoutMs: number;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  maxConnections: number;
  maxConnectionsPerUser: number;
  socketMaxBufferBytes: number;
  socketMaxOutgoingBytes: number;
  presenceTtlMs: number;
  storeBatchMax: number;
  storeBatchWaitMs: number;
  storeQueueMax: number;
  rateLimitDisabled: boolean;
  broadcastDirectWrite: boolean;
  /** How often a node settles its users' consumption with Redis (cluster-wide limits). */
  rateLimitSyncMs: number;
  rates: Readonly<Record<RateScope, Readonly<Bucket>>>;
  rateSend: Bucket;
  rateTyping: Bucket;
  rateRestWrite: Bucket;
  rateRestRead: Bucket;
  /**
   * DEV_INSECURE_TOKENS: `POST /dev/token` mints a token for any user id, and without JWT_SECRET the
   * published development secret signs and verifies. Never on by default; refused in production.
   */
  devTokens: boolean;
  webDir: string | undefined;
}

/**
 * The development secret, published in this repository: a node uses it only with
 * DEV_INSECURE_TOKENS=1 and no JWT_SECRET, and refuses to start with it in any other case.
 * `pnpm token` and `pnpm loadtest` fall back to it to talk to such a node.
 */
export const DEV_SECRET = "dev-only-secret-change-me-dev-only-secret";

/** Every variable the node reads, with its default, as documented in the README. */
export const CONFIG_VARIABLES = [
  "NODE_ENV", "DEV_INSECURE_TOKENS", "PORT", "HOST", "NODE_ID", "JWT_SECRET",
  "JWT_ALGORITHMS", "JWT_PUBLIC_KEY_FILE", "JWT_JWKS_URL", "JWT_JWKS_TIMEOUT_MS", "JWT_JWKS_COOLDOWN_MS", "JWT_JWKS_CACHE_MAX_AGE_MS",
  "JWT_ISSUER", "JWT_AUDIENCE", "JWT_CLOCK_TOLERANCE_S", "CORS_ORIGINS",
  "REDIS_URL", "REDIS_TLS_CA_FILE", "REDIS_TLS_SERVERNAME", "REDIS_TLS_CERT_FILE", "REDIS_TLS_KEY_FILE", "REDIS_ADAPTER", "REDIS_KEY_PREFIX",
  "MONGO_URL", "MONGO_DB", "MONGO_WRITE_CONCERN", "MONGO_ALLOW_LOSING_ACKNOWLEDGED",
  "DATA_DIR", "SQLITE_SYNCHRONOUS", "SQLITE_THREAD",
  "TYPING_TIMEOUT_MS", "MAX_MESSAGE_LENGTH", "SHUTDOWN_TIMEOUT_MS", "LOG_LEVEL",
  "MAX_CONNECTIONS", "MAX_CONNECTIONS_PER_USER", "SOCKET_MAX_BUFFER_BYTES", "SOCKET_MAX_OUTGOING_BYTES", "PRESENCE_TTL_MS",
  "STORE_BATCH_MAX", "STORE_BATCH_WAIT_MS", "STORE_QUEUE_MAX",
  "RATE_LIMIT_DISABLED", "RATE_LIMIT_SYNC_MS", "BROADCAST_DIRECT_WRITE",
  ...RATE_SCOPES.flatMap((s) => [`${RATE_DEFAULTS[s].variable}_PER_SEC`, `${RATE_DEFAULTS[s].variable}_BURST`] as const),
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
 * MONGO_URL: a MongoDB connection string. A replica set's seed list (`mongodb://a:27017,b:27017/?replicaSet=rs0`,
 * the usual production form) is not a WHATWG URL, so only the scheme is checked here; the driver's
 * own parser checks the rest when the store is created (a refusal there names MONGO_URL too).
 */
function mongoUrl(env: Env): string | undefined {
  const raw = env.MONGO_URL?.trim();
  if (!raw) return undefined;
  if (/^mongodb(?:\+srv)?:\/\/./i.test(raw)) return raw;
  return url(env, "MONGO_URL", ["mongodb:", "mongodb+srv:"]);
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
function host(env: Env, def: string): string {
  const h = env.HOST?.trim() || def;
  if (net.isIP(h) !== 0) return h;
  const label = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
  if (h.length <= 253 && h.split(".").every((l) => label.test(l))) return h;
  const hint = h.startsWith("[") && h.endsWith("]") && net.isIP(h.slice(1, -1)) === 6 ? `: write the IPv6 address without brackets, "${h.slice(1, -1)}"` : "";
  throw new ConfigError(`HOST must be an IP address or a host name, got "${env.HOST}"${hint}`);
}

/**
 * MONGO_WRITE_CONCERN: `majority`, or a number of members from 1 to 50 (a replica set's most).
 * 0 (unacknowledged writes) is refused: a message is acknowledged only once it is stored. A number
 * needs MONGO_ALLOW_LOSING_ACKNOWLEDGED=1: below a majority, a failover rolls back writes the node
 * already acknowledged and hands their `seq` to other messages; the node cannot know at start-up
 * whether a number is a majority of a set whose membership may change.
 */
function writeConcern(env: Env): { wc: "majority" | number; allowLoss: boolean } {
  const allowLoss = bool(env, "MONGO_ALLOW_LOSING_ACKNOWLEDGED", false);
  const wc = env.MONGO_WRITE_CONCERN?.trim() || "majority";
  if (wc === "majority") return { wc: "majority", allowLoss };
  if (!/^[0-9]+$/.test(wc)) throw new ConfigError(`MONGO_WRITE_CONCERN must be "majority" or a number of members, got "${wc}"`);
  const n = Number(wc);
  if (n === 0) {
    throw new ConfigError(`MONGO_WRITE_CONCERN=${wc} means unacknowledged writes, and a message is acknowledged only once it is stored: use "majority" or a number from 1`);
  }
  if (n > 50) throw new ConfigError(`MONGO_WRITE_CONCERN must be "majority" or a number from 1 to 50 (a replica set's most members), got ${wc}`);
  if (!allowLoss) {
    throw new ConfigError(
      `MONGO_WRITE_CONCERN=${wc}: a write concern below a majority lets a failover lose messages the node already acknowledged; ` +
        `use "majority", or set MONGO_ALLOW_LOSING_ACKNOWLEDGED=1 to accept that loss`,
    );
  }
  return { wc: n, allowLoss };
}

/** A comma-separated list of non-blank words, or undefined when unset or blank. */
function list(env: Env, name: string): string[] | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return undefined;
  const items = raw.split(",").map((s) => s.trim());
  if (items.some((s) => s === "")) throw new ConfigError(`${name} holds an empty entry, got "${raw}"`);
  return items;
}

const LOOPBACK_HOSTS = new Set(["localhost", "[::1]"]);

/** JWT_JWKS_URL: https, or http to a loopback address only (a local identity provider, the tests). */
function jwksUrl(env: Env): string | undefined {
  const u = url(env, "JWT_JWKS_URL", ["https:", "http:"]);
  if (!u) return undefined;
  const parsed = new URL(u);
  if (parsed.username || parsed.password) throw new ConfigError("JWT_JWKS_URL must not carry credentials");
  if (parsed.protocol === "http:" && !LOOPBACK_HOSTS.has(parsed.hostname) && !/^127\.\d+\.\d+\.\d+$/.test(parsed.hostname)) {
    throw new ConfigError(`JWT_JWKS_URL must use https (http only to a loopback address), got "${u}"`);
  }
  return u;
}

/** The algorithm a PEM public key verifies, or a ConfigError naming JWT_PUBLIC_KEY_FILE. */
function algorithmOf(key: KeyObject, file: string): JwtAlgorithm {
  if (key.asymmetricKeyType === "rsa") {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new ConfigError(`JWT_PUBLIC_KEY_FILE "${file}" holds a ${bits}-bit RSA key: RS256 needs at least 2048 bits`);
    return "RS256";
  }
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return "ES256";
  const what = key.asymmetricKeyType === "ec" ? `an EC key on ${key.asymmetricKeyDetails?.namedCurve}` : `a ${key.asymmetricKeyType} key`;
  throw new ConfigError(`JWT_PUBLIC_KEY_FILE "${file}" holds ${what}: RS256 takes an RSA key of 2048 bits or more, ES256 an EC key on P-256`);
}

/**
 * JWT_PUBLIC_KEY_FILE: one PEM public key (SPKI) or X.509 certificate, or a JWK Set (JSON, keys
 * chosen by `kid`, so that one file holds the old and the new key across a rotation). Read once,
 * at start-up.
 * A private key is refused: a node only verifies, and must not hold what signs.
 */
function publicKeyFile(env: Env): { file: string; key?: KeyObject; algorithm?: JwtAlgorithm; jwks?: { keys: Record<string, unknown>[] } } | undefined {
  const raw = env.JWT_PUBLIC_KEY_FILE?.trim();
  if (!raw) return undefined;
  const file = path.resolve(raw);
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`JWT_PUBLIC_KEY_FILE "${file}" cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (text.trimStart().startsWith("{")) {
    let jwks: unknown;
    try {
      jwks = JSON.parse(text);
    } catch {
      throw new ConfigError(`JWT_PUBLIC_KEY_FILE "${file}" starts with "{" but is not JSON (a JWK Set)`);
    }
    const keys = (jwks as { keys?: unknown }).keys;
    if (!Array.isArray(keys) || keys.length === 0 || !keys.every((k) => k && typeof k === "object" && !Array.isArray(k))) {
      throw new ConfigError(`JWT_PUBLIC_KEY_FILE "${file}" is JSON but not a JWK Set ({ "keys": [ ... ] })`);
    }
    if (keys.some((k) => "d" in k || "k" in k)) throw new ConfigError(`JWT_PUBLIC_KEY_FILE "${file}" holds a private or secret key: give the public keys only`);
    return { file, jwks: { keys: keys as Record<string, unknown>[] } };
  }
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) throw new ConfigError(`JWT_PUBLIC_KEY_FILE "${file}" holds a private key: give the public key only`);
  let key: KeyObject;
  try {
    key = /-----BEGIN CERTIFICATE-----/.test(text) ? new X509Certificate(text).publicKey : createPublicKey(text);
  } catch {
    throw new ConfigError(`JWT_PUBLIC_KEY_FILE "${file}" holds no PEM public key, certificate or JWK Set`);
  }
  // createPublicKey also derives a public key from a private one in another encoding: refuse that too.
  let isPrivate = false;
  try {
    createPrivateKey(text);
    isPrivate = true;
  } catch {
    /* a public key, as it should be */
  }
  if (isPrivate) throw new ConfigError(`JWT_PUBLIC_KEY_FILE "${file}" holds a private key: give the public key only`);
  return { file, key, algorithm: algorithmOf(key, file) };
}

/**
 * The token settings and the development mode. No unsafe default: without DEV_INSECURE_TOKENS a
 * node needs JWT_SECRET, JWT_PUBLIC_KEY_FILE or JWT_JWKS_URL, and the published development secret
 * is refused; NODE_ENV plays no part except that production refuses DEV_INSECURE_TOKENS.
 */
function jwtSettings(env: Env, devInsecure: boolean): JwtSettings {
  // The secret is used as given; only the check ignores surrounding whitespace, so "   …" cannot pass for 16 characters.
  const given = env.JWT_SECRET ?? "";
  if (given !== "" && given.trim() === "") throw new ConfigError("JWT_SECRET is only whitespace: set a secret of at least 16 characters");
  if (given !== "" && given.trim().length < 16) {
    throw new ConfigError("JWT_SECRET must be at least 16 characters, not counting leading and trailing whitespace");
  }
  if (given.trim() === DEV_SECRET && !devInsecure) {
    throw new ConfigError("JWT_SECRET is the development secret published in this repository: anyone can sign tokens with it. Set a secret of your own (openssl rand -hex 32)");
  }
  const keyFile = publicKeyFile(env);
  const remote = jwksUrl(env);
  if (keyFile && remote) throw new ConfigError("JWT_PUBLIC_KEY_FILE and JWT_JWKS_URL are both set: a node takes its public keys from one of them");
  const secret = given !== "" ? given : devInsecure ? DEV_SECRET : undefined;
  if (secret === undefined && !keyFile && !remote) {
    throw new ConfigError(
      "JWT_SECRET, JWT_PUBLIC_KEY_FILE or JWT_JWKS_URL is required: set one (a secret: openssl rand -hex 32), " +
        "or DEV_INSECURE_TOKENS=1 for a local demo that signs with a published secret and mints tokens for anyone",
    );
  }

  const listed = list(env, "JWT_ALGORITHMS");
  const defaults: JwtAlgorithm[] = [
    ...(secret !== undefined ? (["HS256"] as const) : []),
    ...(keyFile?.algorithm ? [keyFile.algorithm] : keyFile?.jwks || remote ? (["RS256", "ES256"] as const) : []),
  ];
  const algorithms = listed
    ? listed.map((a) => {
        const up = a.toUpperCase();
        if (up === "NONE") throw new ConfigError("JWT_ALGORITHMS must not hold none: an unsigned token proves nothing");
        if (!(JWT_ALGORITHMS as readonly string[]).includes(up)) throw new ConfigError(`JWT_ALGORITHMS holds "${a}": the node accepts ${JWT_ALGORITHMS.join(", ")}`);
        return up as JwtAlgorithm;
      })
    : defaults;
  for (const alg of new Set(algorithms)) {
    if (alg === "HS256" && secret === undefined) throw new ConfigError("JWT_ALGORITHMS holds HS256 but JWT_SECRET is not set");
    if (alg !== "HS256" && !keyFile && !remote) throw new ConfigError(`JWT_ALGORITHMS holds ${alg} but neither JWT_PUBLIC_KEY_FILE nor JWT_JWKS_URL is set`);
    if (alg !== "HS256" && keyFile?.algorithm && keyFile.algorithm !== alg) {
      throw new ConfigError(`JWT_ALGORITHMS holds ${alg} but JWT_PUBLIC_KEY_FILE holds a ${keyFile.algorithm} key`);
    }
  }
  if (devInsecure && !algorithms.includes("HS256")) throw new ConfigError("DEV_INSECURE_TOKENS mints HS256 tokens: JWT_ALGORITHMS must hold HS256");
  return {
    algorithms: Object.freeze([...new Set(algorithms)]),
    secret,
    publicKey: keyFile?.key,
    localJwks: keyFile?.jwks,
    jwksUrl: remote,
    jwksTimeoutMs: int(env, "JWT_JWKS_TIMEOUT_MS", 5000, 100, 60_000),
    jwksCooldownMs: int(env, "JWT_JWKS_COOLDOWN_MS", 30_000, 0, 3_600_000),
    jwksCacheMaxAgeMs: int(env, "JWT_JWKS_CACHE_MAX_AGE_MS", 600_000, 1000, 86_400_000),
    issuer: list(env, "JWT_ISSUER"),
    audience: list(env, "JWT_AUDIENCE"),
    clockToleranceSec: int(env, "JWT_CLOCK_TOLERANCE_S", 0, 0, 300),
  };
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

/** A PEM file read at start-up; a ConfigError naming `name` when it cannot be read. */
function readPem(name: string, file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === "ENOENT" ? "it does not exist" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "it is a directory" : (code ?? String(err));
    throw new ConfigError(`${name} "${file}" cannot be read: ${reason}`);
  }
}

/** The first PEM certificate of `text`, parsed; a ConfigError naming `name` when there is none. */
function firstCertificate(name: string, file: string, text: string): X509Certificate {
  const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text);
  try {
    if (!first) throw new Error("no certificate");
    return new X509Certificate(first[0]);
  } catch {
    throw new ConfigError(`${name} "${file}" holds no PEM certificate`);
  }
}

/**
 * REDIS_TLS_CA_FILE, REDIS_TLS_SERVERNAME, REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE: with a
 * rediss:// REDIS_URL only (with redis:// they would silently do nothing). Files are read once,
 * here: the CA must hold a PEM certificate, the client certificate and key come together and match.
 */
function redisTls(env: Env, redisUrl: string | undefined): RedisTls | undefined {
  const names = ["REDIS_TLS_CA_FILE", "REDIS_TLS_SERVERNAME", "REDIS_TLS_CERT_FILE", "REDIS_TLS_KEY_FILE"] as const;
  const v = Object.fromEntries(names.map((n) => [n, env[n]?.trim() || undefined])) as Record<(typeof names)[number], string | undefined>;
  const tls = redisUrl !== undefined && new URL(redisUrl).protocol === "rediss:";
  if (!tls) {
    for (const n of names) {
      if (v[n]) throw new ConfigError(`${n} is set but REDIS_URL ${redisUrl ? "uses redis:// (no TLS): use rediss://" : "is not set"}`);
    }
    return undefined;
  }
  let ca: string | undefined;
  if (v.REDIS_TLS_CA_FILE) {
    ca = readPem("REDIS_TLS_CA_FILE", v.REDIS_TLS_CA_FILE);
    firstCertificate("REDIS_TLS_CA_FILE", v.REDIS_TLS_CA_FILE, ca);
  }
  const servername = v.REDIS_TLS_SERVERNAME;
  if (servername !== undefined && (servername.length > 253 || !/^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(servername))) {
    throw new ConfigError(`REDIS_TLS_SERVERNAME must be a host name, got "${servername}"`);
  }
  let cert: string | undefined;
  let key: string | undefined;
  if (v.REDIS_TLS_CERT_FILE || v.REDIS_TLS_KEY_FILE) {
    if (!v.REDIS_TLS_CERT_FILE) throw new ConfigError("REDIS_TLS_KEY_FILE is set but REDIS_TLS_CERT_FILE is not: a client certificate needs both");
    if (!v.REDIS_TLS_KEY_FILE) throw new ConfigError("REDIS_TLS_CERT_FILE is set but REDIS_TLS_KEY_FILE is not: a client certificate needs both");
    cert = readPem("REDIS_TLS_CERT_FILE", v.REDIS_TLS_CERT_FILE);
    const x509 = firstCertificate("REDIS_TLS_CERT_FILE", v.REDIS_TLS_CERT_FILE, cert);
    key = readPem("REDIS_TLS_KEY_FILE", v.REDIS_TLS_KEY_FILE);
    let matches = false;
    try {
      matches = x509.checkPrivateKey(createPrivateKey(key));
    } catch {
      throw new ConfigError(`REDIS_TLS_KEY_FILE "${v.REDIS_TLS_KEY_FILE}" holds no PEM private key`);
    }
    if (!matches) throw new ConfigError(`REDIS_TLS_KEY_FILE "${v.REDIS_TLS_KEY_FILE}" is not the private key of REDIS_TLS_CERT_FILE's certificate`);
  }
  return Object.freeze({ ca, servername, cert, key });
}

/** Parses and validates the environment. Throws ConfigError naming the first bad variable. */
export function loadConfig(env: Env = process.env): Readonly<Config> {
  // Case-insensitive: "Production" and "prod" are production too, never a development node by accident.
  let nodeEnv = env.NODE_ENV?.trim().toLowerCase() || "development";
  if (nodeEnv === "prod") nodeEnv = "production";
  const production = nodeEnv === "production";

  // The insecure development mode only when asked for by name: never from NODE_ENV, set or unset.
  const devTokens = bool(env, "DEV_INSECURE_TOKENS", false);
  if (devTokens && production) throw new ConfigError("DEV_INSECURE_TOKENS cannot be enabled when NODE_ENV=production");
  if (env.DEV_TOKENS !== undefined && env.DEV_TOKENS.trim() !== "" && bool(env, "DEV_TOKENS", false)) {
    throw new ConfigError("DEV_TOKENS was replaced by DEV_INSECURE_TOKENS, which is never on by default: set DEV_INSECURE_TOKENS=1 for a local demo");
  }
  const jwt = jwtSettings(env, devTokens);
  const { wc, allowLoss } = writeConcern(env);

  const nodeId = env.NODE_ID?.trim() || `${os.hostname()}-${process.pid}`;
  if (!/^[A-Za-z0-9._:-]{1,64}$/.test(nodeId)) throw new ConfigError("NODE_ID must be 1-64 of [A-Za-z0-9._:-]");

  const keyPrefix = env.REDIS_KEY_PREFIX?.trim() || "chat";
  if (!/^[A-Za-z0-9._:-]{1,64}$/.test(keyPrefix)) throw new ConfigError("REDIS_KEY_PREFIX must be 1-64 of [A-Za-z0-9._:-]");

  const redisUrl = url(env, "REDIS_URL", ["redis:", "rediss:"]);
  const rates = Object.freeze(
    Object.fromEntries(RATE_SCOPES.map((scope) => {
      const d = RATE_DEFAULTS[scope];
      return [scope, Object.freeze(bucket(env, d.variable, d.perSec, d.burst))];
    })) as Record<RateScope, Bucket>,
  );
  const config: Config = {
    nodeEnv,
    port: int(env, "PORT", 3001, 0, 65535),
    // A node that mints tokens for anyone listens on loopback unless HOST says otherwise.
    host: host(env, devTokens ? "127.0.0.1" : "0.0.0.0"),
    nodeId,
    jwt: Object.freeze(jwt),
    corsOrigins: corsOrigins(env),
    redisUrl,
    redisTls: redisTls(env, redisUrl),
    redisAdapter: oneOf(env, "REDIS_ADAPTER", "classic", ["classic", "sharded"] as const),
    redisKeyPrefix: keyPrefix,
    mongoUrl: mongoUrl(env),
    mongoDb: env.MONGO_DB?.trim() || "chat",
    mongoWriteConcern: wc,
    mongoAllowLosingAcknowledged: allowLoss,
    dataDir: path.resolve(env.DATA_DIR?.trim() || "data"),
    sqliteSynchronous: oneOf(env, "SQLITE_SYNCHRONOUS", "FULL", ["FULL", "NORMAL"] as const),
    sqliteThread: oneOf(env, "SQLITE_THREAD", "worker", ["worker", "main"] as const),
    typingTimeoutMs: int(env, "TYPING_TIMEOUT_MS", 3000, 50, 600_000),
    maxMessageLength: int(env, "MAX_MESSAGE_LENGTH", 4000, 1, 1_000_000),
    shutdownTimeoutMs: int(env, "SHUTDOWN_TIMEOUT_MS", 10_000, 100, 600_000),
    logLevel: oneOf(env, "LOG_LEVEL", "info", ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const),
    maxConnections: int(env, "MAX_CONNECTIONS", 20_000, 1, 10_000_000),
    maxConnectionsPerUser: int(env, "MAX_CONNECTIONS_PER_USER", 20, 1, 10_000_000),
    socketMaxBufferBytes: int(env, "SOCKET_MAX_BUFFER_BYTES", 65_536, 1024, 100_000_000),
    socketMaxOutgoingBytes: outgoingLimit(env),
    presenceTtlMs: int(env, "PRESENCE_TTL_MS", 30_000, 1000, 3_600_000),
    storeBatchMax: int(env, "STORE_BATCH_MAX", 512, 1, 100_000),
    storeBatchWaitMs: int(env, "STORE_BATCH_WAIT_MS", 0, 0, 1000),
    storeQueueMax: int(env, "STORE_QUEUE_MAX", 20_000, 1, 10_000_000),
    rateLimitDisabled: bool(env, "RATE_LIMIT_DISABLED", false),
    broadcastDirectWrite: bool(env, "BROADCAST_DIRECT_WRITE", true),
    rateLimitSyncMs: int(env, "RATE_LIMIT_SYNC_MS", 50, 1, 10_000),
    rates,
    rateSend: rates.send,
    rateTyping: rates.typing,
    rateRestWrite: rates.rest_write,
    rateRestRead: rates.rest_read,
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

/**
 * The settings `pnpm token` mints with: JWT_SECRET (with JWT_ISSUER / JWT_AUDIENCE) as a node reads
 * them; without JWT_SECRET the published development secret (`demo: true`), which only a node with
 * DEV_INSECURE_TOKENS=1 accepts.
 */
export function loadSigningConfig(env: Env = process.env): { jwt: Readonly<JwtSettings>; demo: boolean } {
  const demo = !env.JWT_SECRET?.trim();
  const jwt = jwtSettings(demo ? { ...env, JWT_SECRET: "", JWT_PUBLIC_KEY_FILE: "", JWT_JWKS_URL: "", JWT_ALGORITHMS: "" } : { ...env, JWT_PUBLIC_KEY_FILE: "", JWT_JWKS_URL: "", JWT_ALGORITHMS: "" }, demo);
  return { jwt: Object.freeze(jwt), demo };
}

/** True when the node runs with the published development secret (only with DEV_INSECURE_TOKENS). */
export function usesDevSecret(config: Config): boolean {
  return config.jwt.secret === DEV_SECRET;
}
