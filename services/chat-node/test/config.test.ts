import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { NODE_MAIN, REPO_ROOT, freePort, startProcess, stopAll, tempDir } from "@chat/test-kit";
import { CONFIG_VARIABLES, ConfigError, DEV_SECRET, RATE_DEFAULTS, RATE_SCOPES, loadConfig } from "../src/config.ts";
import { ThreadedSqliteStore } from "../src/store/index.ts";
import { ensureDataDir } from "../src/store/sqlite-store.ts";

const SECRET = "a-production-secret-0123456789";

/**
 * Runs the node with `env` (and a fresh DATA_DIR unless given) until it exits, at most `timeoutMs`;
 * a node still running then is killed by its PID and reported as `timedOut`.
 */
async function runNode(env: Record<string, string>, timeoutMs = 20_000): Promise<{ code: number | null; stderr: string; timedOut: boolean }> {
  const p = startProcess(process.execPath, [NODE_MAIN], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, DATA_DIR: tempDir("chat-config-"), HOST: "127.0.0.1", PORT: "0", LOG_LEVEL: "warn", JWT_SECRET: SECRET, ...env },
  });
  let stderr = "";
  p.proc.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), timeoutMs)));
    const result = await Promise.race([p.exited, timeout]);
    if (result === "timeout") return { code: null, stderr, timedOut: true };
    return { code: result.code, stderr, timedOut: false };
  } finally {
    clearTimeout(timer);
    if (p.proc.exitCode === null && p.proc.signalCode === null) {
      process.kill(p.pid, "SIGKILL");
      await p.exited;
    }
  }
}

const STACK_LINE = /^ {4}at /m;

/** loadConfig with a JWT_SECRET unless `env` says otherwise: a node needs a way to verify tokens. */
const load = (env: Record<string, string | undefined>) => loadConfig({ JWT_SECRET: SECRET, ...env });

describe("configuration", () => {
  after(async () => {
    await stopAll();
  });

  it("has the contract's defaults", () => {
    const c = load({});
    assert.equal(c.port, 3001);
    assert.deepEqual(c.corsOrigins, ["http://localhost:3000"]);
    assert.equal(c.redisUrl, undefined);
    assert.equal(c.mongoUrl, undefined);
    assert.equal(c.typingTimeoutMs, 3000);
    assert.equal(c.maxMessageLength, 4000);
    assert.equal(c.shutdownTimeoutMs, 10_000);
    assert.deepEqual(c.rateSend, { perSec: 20, burst: 40 });
    for (const scope of RATE_SCOPES) assert.deepEqual(c.rates[scope], { perSec: RATE_DEFAULTS[scope].perSec, burst: RATE_DEFAULTS[scope].burst }, scope);
    assert.equal(c.maxConnectionsPerUser, 20);
    assert.equal(c.devTokens, false);
    assert.deepEqual(c.jwt.algorithms, ["HS256"]);
    assert.equal(c.jwt.clockToleranceSec, 0);
    assert.equal(c.socketMaxOutgoingBytes, 8 * 1024 * 1024);
    assert.equal(c.broadcastDirectWrite, true);
    assert.equal(load({ SOCKET_MAX_OUTGOING_BYTES: "0" }).socketMaxOutgoingBytes, 0, "0: no bound");
    assert.equal(load({ BROADCAST_DIRECT_WRITE: "0" }).broadcastDirectWrite, false);
    assert.ok(Object.isFrozen(c));
  });

  const bad: [string, Record<string, string>][] = [
    ["PORT", { PORT: "abc" }],
    ["PORT", { PORT: "70000" }],
    ["TYPING_TIMEOUT_MS", { TYPING_TIMEOUT_MS: "-5" }],
    ["MAX_MESSAGE_LENGTH", { MAX_MESSAGE_LENGTH: "0" }],
    ["REDIS_URL", { REDIS_URL: "http://localhost:6379" }],
    ["REDIS_URL", { REDIS_URL: "not a url" }],
    ["MONGO_URL", { MONGO_URL: "postgres://x" }],
    ["PORT", { PORT: "-0" }],
    ["STORE_BATCH_WAIT_MS", { STORE_BATCH_WAIT_MS: "-0" }],
    ["RATE_SEND_PER_SEC", { RATE_SEND_PER_SEC: "-0.5" }],
    ["CORS_ORIGINS", { CORS_ORIGINS: "http://ok.example,not-an-origin" }],
    ["RATE_LIMIT_DISABLED", { RATE_LIMIT_DISABLED: "maybe" }],
    ["RATE_SEND_PER_SEC", { RATE_SEND_PER_SEC: "fast" }],
    ["LOG_LEVEL", { LOG_LEVEL: "loud" }],
    ["REDIS_ADAPTER", { REDIS_ADAPTER: "magic" }],
    ["SQLITE_THREAD", { SQLITE_THREAD: "both" }],
    ["JWT_SECRET", { NODE_ENV: "production", JWT_SECRET: "" }],
    ["JWT_SECRET", { JWT_SECRET: "" }],
    ["JWT_SECRET", { JWT_SECRET: "short" }],
    ["DEV_INSECURE_TOKENS", { NODE_ENV: "production", DEV_INSECURE_TOKENS: "1" }],
    ["DEV_INSECURE_TOKENS", { DEV_INSECURE_TOKENS: "maybe" }],
    ["DEV_INSECURE_TOKENS", { DEV_TOKENS: "1" }],
    ["SOCKET_MAX_BUFFER_BYTES", { SOCKET_MAX_BUFFER_BYTES: "2000", MAX_MESSAGE_LENGTH: "4000" }],
    ["SOCKET_MAX_OUTGOING_BYTES", { SOCKET_MAX_OUTGOING_BYTES: "1000" }],
    ["SOCKET_MAX_OUTGOING_BYTES", { SOCKET_MAX_OUTGOING_BYTES: "lots" }],
    ["BROADCAST_DIRECT_WRITE", { BROADCAST_DIRECT_WRITE: "sometimes" }],
    ["HOST", { HOST: "not..a..host" }],
    ["JWT_SECRET", { NODE_ENV: "Production", JWT_SECRET: "" }],
    ["JWT_SECRET", { NODE_ENV: " prod ", JWT_SECRET: "" }],
    ["DEV_INSECURE_TOKENS", { NODE_ENV: "PROD", DEV_INSECURE_TOKENS: "1" }],
    ["MONGO_WRITE_CONCERN", { MONGO_WRITE_CONCERN: "0" }],
    ["MONGO_WRITE_CONCERN", { MONGO_WRITE_CONCERN: "1.5" }],
    ["MONGO_ALLOW_LOSING_ACKNOWLEDGED", { MONGO_WRITE_CONCERN: "1" }],
    ["MONGO_ALLOW_LOSING_ACKNOWLEDGED", { MONGO_ALLOW_LOSING_ACKNOWLEDGED: "perhaps" }],
    ["MAX_CONNECTIONS_PER_USER", { MAX_CONNECTIONS_PER_USER: "0" }],
    ["RATE_JOIN_PER_SEC", { RATE_JOIN_PER_SEC: "0" }],
    ["RATE_HANDSHAKE_BURST", { RATE_HANDSHAKE_BURST: "1.5" }],
    ["RATE_LIMIT_SYNC_MS", { RATE_LIMIT_SYNC_MS: "0" }],
    ["JWT_CLOCK_TOLERANCE_S", { JWT_CLOCK_TOLERANCE_S: "301" }],
    ["JWT_JWKS_TIMEOUT_MS", { JWT_JWKS_URL: "https://idp.example/jwks.json", JWT_JWKS_TIMEOUT_MS: "0" }],
    ["JWT_JWKS_URL", { JWT_JWKS_URL: "ftp://idp.example/jwks.json" }],
    ["JWT_JWKS_URL", { JWT_JWKS_URL: "http://idp.example/jwks.json" }],
    ["JWT_JWKS_URL", { JWT_JWKS_URL: "https://user:pw@idp.example/jwks.json" }],
    ["JWT_ALGORITHMS", { JWT_ALGORITHMS: "none" }],
    ["JWT_ALGORITHMS", { JWT_ALGORITHMS: "HS512" }],
    ["JWT_ALGORITHMS", { JWT_ALGORITHMS: "HS256,,RS256" }],
    ["JWT_ALGORITHMS", { JWT_ALGORITHMS: "RS256" }],
    ["JWT_ALGORITHMS", { JWT_SECRET: "", JWT_JWKS_URL: "https://idp.example/jwks.json", JWT_ALGORITHMS: "HS256" }],
    ["JWT_PUBLIC_KEY_FILE", { JWT_PUBLIC_KEY_FILE: "/nonexistent/key.pem" }],
    ["JWT_ISSUER", { JWT_ISSUER: "a,,b" }],
    ["JWT_SECRET", { JWT_SECRET: " ".repeat(16) }],
    ["JWT_SECRET", { NODE_ENV: "production", JWT_SECRET: " ".repeat(40) }],
    ["WEB_DIR", { WEB_DIR: "/nonexistent" }],
    ["RATE_SEND_PER_SEC", { RATE_SEND_PER_SEC: "0x10" }],
    ["RATE_SEND_BURST", { RATE_SEND_BURST: "0x10" }],
  ];
  for (const [name, env] of bad) {
    it(`refuses ${JSON.stringify(env)} naming ${name}`, () => {
      assert.throws(() => load(env), (e: Error) => e instanceof ConfigError && e.message.includes(name));
    });
  }

  it("production turns dev tokens off by default", () => {
    const c = load({ NODE_ENV: "production", JWT_SECRET: SECRET });
    assert.equal(c.devTokens, false);
  });

  it("no unsafe default: without a key a node does not start, whatever NODE_ENV says", () => {
    for (const v of [undefined, "", "development", "test", "staging", "ci", "production"]) {
      refuses({ NODE_ENV: v as string, JWT_SECRET: "" }, "JWT_SECRET", /DEV_INSECURE_TOKENS=1/);
      assert.equal(load({ NODE_ENV: v }).devTokens, false, `NODE_ENV=${v}: no dev tokens`);
    }
  });

  it("the published development secret is refused outside DEV_INSECURE_TOKENS, and used only with it", () => {
    for (const env of [{}, { NODE_ENV: "development" }, { NODE_ENV: "production" }, { DEV_INSECURE_TOKENS: "0" }] as Record<string, string>[]) {
      refuses({ ...env, JWT_SECRET: DEV_SECRET }, "JWT_SECRET", /published/);
      refuses({ ...env, JWT_SECRET: ` ${DEV_SECRET} ` }, "JWT_SECRET", /published/);
    }
    const demo = loadConfig({ DEV_INSECURE_TOKENS: "1" });
    assert.equal(demo.devTokens, true);
    assert.equal(demo.jwt.secret, DEV_SECRET);
    assert.deepEqual(demo.jwt.algorithms, ["HS256"]);
    assert.equal(demo.host, "127.0.0.1", "a node that mints tokens for anyone listens on loopback by default");
    assert.equal(loadConfig({ DEV_INSECURE_TOKENS: "1", HOST: "0.0.0.0" }).host, "0.0.0.0", "unless HOST says otherwise");
    const own = load({ DEV_INSECURE_TOKENS: "yes" });
    assert.equal(own.jwt.secret, SECRET, "a JWT_SECRET given is used in the demo mode too");
    assert.equal(load({}).host, "0.0.0.0");
    // DEV_TOKENS=0 (the old switch, off) is harmless and ignored.
    assert.equal(load({ DEV_TOKENS: "0" }).devTokens, false);
  });

  it("NODE_ENV is read case-insensitively, and prod is production", () => {
    for (const v of ["production", "Production", " PRODUCTION ", "prod", "Prod"]) {
      const c = load({ NODE_ENV: v, JWT_SECRET: SECRET });
      assert.equal(c.nodeEnv, "production", v);
      assert.equal(c.devTokens, false, `NODE_ENV=${v}: no dev tokens`);
    }
  });

  it("dev tokens only with DEV_INSECURE_TOKENS, in any NODE_ENV but production", () => {
    for (const v of [undefined, "", "development", "Development", "test", " TEST ", "staging", "ci", "qa", "dev"]) {
      assert.equal(load({ NODE_ENV: v }).devTokens, false, `NODE_ENV=${v}: off by default`);
      assert.equal(load({ NODE_ENV: v, DEV_INSECURE_TOKENS: "1" }).devTokens, true, `NODE_ENV=${v}: DEV_INSECURE_TOKENS=1 turns them on`);
    }
    assert.equal(load({ DEV_INSECURE_TOKENS: "0" }).devTokens, false);
  });

  const refuses = (env: Record<string, string>, name: string, message?: RegExp) =>
    assert.throws(() => load(env), (e: Error) => e instanceof ConfigError && e.message.includes(name) && (!message || message.test(e.message)), JSON.stringify(env));

  it("MONGO_WRITE_CONCERN takes majority or a number of members, never 0 (unacknowledged writes)", () => {
    for (const [raw, want] of [["", "majority"], ["majority", "majority"], [" majority ", "majority"], ["1", 1], ["3", 3], [" 2 ", 2], ["50", 50]] as const) {
      assert.equal(load({ MONGO_WRITE_CONCERN: raw, MONGO_ALLOW_LOSING_ACKNOWLEDGED: "1" }).mongoWriteConcern, want, raw);
    }
    // A number is accepted only with the switch that says acknowledged messages may be lost.
    for (const raw of ["1", "2", "50"]) refuses({ MONGO_WRITE_CONCERN: raw }, "MONGO_ALLOW_LOSING_ACKNOWLEDGED", /acknowledged/);
    assert.equal(load({ MONGO_ALLOW_LOSING_ACKNOWLEDGED: "1" }).mongoWriteConcern, "majority", "the switch alone changes nothing");
    assert.equal(load({}).mongoWriteConcern, "majority");
    for (const raw of ["0", "00", " 0 "]) refuses({ MONGO_WRITE_CONCERN: raw }, "MONGO_WRITE_CONCERN", /unacknowledged/);
    for (const raw of ["-1", "+1", "1.0", "0x1", "1e1", "51", "99999999999999999999", "Majority", "w:1", "1 2"]) refuses({ MONGO_WRITE_CONCERN: raw }, "MONGO_WRITE_CONCERN");
  });

  it("JWT_SECRET must hold 16 characters besides surrounding whitespace, and is used as given", () => {
    for (const raw of [" ".repeat(16), " ".repeat(64), "\t\n ".repeat(8), `  ${"x".repeat(15)}  `, `${" ".repeat(10)}short${" ".repeat(10)}`]) {
      refuses({ JWT_SECRET: raw }, "JWT_SECRET");
      refuses({ NODE_ENV: "production", JWT_SECRET: raw }, "JWT_SECRET");
    }
    refuses({ JWT_SECRET: " ".repeat(16) }, "JWT_SECRET", /whitespace/);
    const padded = `  ${"s".repeat(16)}  `;
    assert.equal(load({ JWT_SECRET: padded }).jwt.secret, padded, "not trimmed when used");
    assert.equal(load({ JWT_SECRET: "a b c d e f g h i" }).jwt.secret, "a b c d e f g h i", "inner spaces count");
  });

  it("WEB_DIR, when set, must be a directory holding index.html; unset, the page is optional", () => {
    assert.equal(load({}).webDir, undefined);
    assert.equal(load({ WEB_DIR: "  " }).webDir, undefined);
    const root = tempDir("chat-webdir-");
    const page = path.join(root, "page");
    fs.mkdirSync(page);
    fs.writeFileSync(path.join(page, "index.html"), "<!doctype html>");
    assert.equal(load({ WEB_DIR: page }).webDir, page);
    assert.equal(load({ WEB_DIR: ` ${page}/ ` }).webDir, page);
    const empty = path.join(root, "empty");
    fs.mkdirSync(empty);
    const odd = path.join(root, "odd");
    fs.mkdirSync(path.join(odd, "index.html"), { recursive: true });
    const file = path.join(root, "file");
    fs.writeFileSync(file, "");
    const cases: [string, RegExp][] = [
      ["/nonexistent", /does not exist/],
      [path.join(root, "missing"), /does not exist/],
      [path.join(file, "sub"), /does not exist/],
      [file, /not a directory/],
      [empty, /no index\.html/],
      [odd, /index\.html is not a file/],
    ];
    for (const [dir, why] of cases) refuses({ WEB_DIR: dir }, "WEB_DIR", why);
  });

  it("integers are plain decimal digits", () => {
    for (const raw of ["0x10", "0X10", "1e3", "1E3", "1 2", "12.0", "12.", "+5", "0b11", "0o17", "1_000", "1,000", "Infinity", "NaN", "--5", "5-", "١٢", "12px"]) {
      refuses({ RATE_SEND_BURST: raw }, "RATE_SEND_BURST");
      refuses({ PORT: raw }, "PORT");
    }
    assert.equal(load({ RATE_SEND_BURST: " 12 " }).rateSend.burst, 12, "surrounding whitespace is ignored");
    const blank = load({ PORT: " ", TYPING_TIMEOUT_MS: "\t", RATE_SEND_PER_SEC: "  ", RATE_LIMIT_DISABLED: " ", SQLITE_SYNCHRONOUS: " " });
    assert.deepEqual([blank.port, blank.typingTimeoutMs, blank.rateLimitDisabled, blank.sqliteSynchronous], [3001, 3000, false, "FULL"], "a blank value is unset, as an empty one");
    assert.equal(load({ RATE_SEND_BURST: "007" }).rateSend.burst, 7);
    assert.equal(load({ STORE_BATCH_WAIT_MS: "0" }).storeBatchWaitMs, 0);
    // No variable takes a negative value: a sign is refused, "-0" included (PORT=-0 would listen anywhere).
    for (const raw of ["-0", "-5"]) {
      refuses({ STORE_BATCH_WAIT_MS: raw }, "STORE_BATCH_WAIT_MS", /decimal digits/);
      refuses({ TYPING_TIMEOUT_MS: raw }, "TYPING_TIMEOUT_MS", /decimal digits/);
    }
  });

  it("rates are plain decimal numbers", () => {
    for (const raw of ["0x10", "1e3", "1e-1", "Infinity", "-Infinity", "NaN", "+5", ".5", "5.", "1 2", "0b1", "1,5", "1_0", "0.5.1", "fast"]) {
      refuses({ RATE_SEND_PER_SEC: raw }, "RATE_SEND_PER_SEC");
    }
    for (const [raw, want] of [["0.5", 0.5], ["2", 2], [" 2.25 ", 2.25], ["007", 7], ["0.001", 0.001], ["1000000", 1_000_000]] as const) {
      assert.equal(load({ RATE_SEND_PER_SEC: raw }).rateSend.perSec, want, raw);
    }
    for (const raw of ["0", "0.0001", "1000000.5"]) refuses({ RATE_SEND_PER_SEC: raw }, "RATE_SEND_PER_SEC", /from 0.001 to 1000000/);
    for (const raw of ["-1", "-0.5", "-0"]) refuses({ RATE_SEND_PER_SEC: raw }, "RATE_SEND_PER_SEC", /decimal number/);
  });

  it("booleans are 1/0, true/false, yes/no or on/off", () => {
    for (const raw of ["0x1", "1.0", "01", "+1", "-1", "2", "tru", "yes please", "1 0", "y", "n", "enabled"]) {
      refuses({ RATE_LIMIT_DISABLED: raw }, "RATE_LIMIT_DISABLED");
    }
    for (const raw of ["1", "true", "TRUE", " on ", "Yes"]) assert.equal(load({ RATE_LIMIT_DISABLED: raw }).rateLimitDisabled, true, raw);
    for (const raw of ["0", "false", "Off", " no "]) assert.equal(load({ RATE_LIMIT_DISABLED: raw }).rateLimitDisabled, false, raw);
  });

  it("CORS_ORIGINS accepts origins and *", () => {
    const ok: [string, string[]][] = [
      ["http://a.example,https://b.example", ["http://a.example", "https://b.example"]],
      [" http://a.example , https://chat.example.com:8443 ,", ["http://a.example", "https://chat.example.com:8443"]],
      ["*", ["*"]],
      ["http://127.0.0.1:8080,http://[::1]:3000", ["http://127.0.0.1:8080", "http://[::1]:3000"]],
      ["", ["http://localhost:3000"]],
    ];
    for (const [raw, want] of ok) assert.deepEqual(load({ CORS_ORIGINS: raw }).corsOrigins, want, raw);
  });

  it("CORS_ORIGINS refuses what is not an origin, naming the entry", () => {
    const bad = [
      "localhost:3000",
      "foo:bar",
      "ftp://files.example",
      "http://localhost:3000/path",
      "http://localhost:3000/",
      "http://user:pw@a.example",
      "http://a.example?x=1",
      "http://a.example#top",
      "http://a.example:80",
      "null",
    ];
    for (const entry of bad) {
      assert.throws(
        () => load({ CORS_ORIGINS: `https://fine.example,${entry}` }),
        (e: Error) => e instanceof ConfigError && e.message.includes("CORS_ORIGINS") && e.message.includes(`"${entry}"`),
        entry,
      );
    }
    assert.throws(() => load({ CORS_ORIGINS: "https://a.example/" }), /write "https:\/\/a\.example"/, "suggests the entry without its slash");
    assert.throws(() => load({ CORS_ORIGINS: "localhost:3000" }), /did you mean "http:\/\/localhost:3000"/);
    for (const empty of [",", " , ,"]) {
      assert.throws(() => load({ CORS_ORIGINS: empty }), (e: Error) => e instanceof ConfigError && e.message.includes("CORS_ORIGINS"), JSON.stringify(empty));
    }
  });

  it("HOST takes an IP address or a host name", () => {
    for (const h of ["0.0.0.0", "127.0.0.1", "::", "::1", "fd00::1", "localhost", "chat-node-1", "my.host.example", `${"a".repeat(63)}.example`]) {
      assert.equal(load({ HOST: h }).host, h);
    }
    assert.equal(load({ HOST: " localhost " }).host, "localhost");
    assert.equal(load({}).host, "0.0.0.0");
    const long = Array.from({ length: 4 }, () => "a".repeat(63)).join("."); // 255 characters
    for (const h of ["not..a..host", "-bad.example", "bad-.example", "a b", "host_name", "[::1]", "http://x.example", "a".repeat(64), long, ".", "example.com/x"]) {
      assert.throws(() => load({ HOST: h }), (e: Error) => e instanceof ConfigError && e.message.includes("HOST"), h);
    }
  });

  it("DATA_DIR is created level by level, and refused when it cannot be a directory", async () => {
    const root = tempDir("chat-datadir-");
    ensureDataDir(path.join(root, "a/b/c"));
    assert.ok(fs.statSync(path.join(root, "a/b/c")).isDirectory());
    ensureDataDir(path.join(root, "a/b/c"));
    const file = path.join(root, "file");
    fs.writeFileSync(file, "");
    for (const dir of [file, path.join(file, "sub"), path.join(file, "sub/deeper")]) {
      assert.throws(() => ensureDataDir(dir), (e: Error) => e instanceof ConfigError && e.message.includes("DATA_DIR") && e.message.includes("not a directory"), dir);
    }
    // The store's thread sends its errors back by name: a ConfigError keeps its name for main.ts.
    const store = new ThreadedSqliteStore({ dataDir: path.join(file, "sub") });
    try {
      await assert.rejects(store.init(), (e: Error) => e.name === "ConfigError" && e.message.includes("DATA_DIR"));
    } finally {
      await store.close();
    }
  });

  it("a malformed variable stops the node with a message naming it", async () => {
    const r = await runNode({ PORT: "not-a-port" });
    assert.equal(r.code, 78);
    assert.match(r.stderr, /PORT must be an integer/);
  });

  // The driver's own parser is stricter than a URL check; what it refuses is a configuration error too.
  for (const mongoUrl of ["mongodb://", "mongodb://localhost/?badoption=1", "mongodb+srv://localhost:27017"]) {
    it(`MONGO_URL=${mongoUrl} stops the node with exit 78 naming it, without a stack`, async () => {
      const r = await runNode({ MONGO_URL: mongoUrl });
      assert.equal(r.timedOut, false, r.stderr);
      assert.equal(r.code, 78, r.stderr);
      assert.match(r.stderr, /configuration error: MONGO_URL cannot be used: /);
      assert.doesNotMatch(r.stderr, STACK_LINE);
    });
  }

  it("a node without a key, or with the published secret, does not start (exit 78 naming JWT_SECRET)", async () => {
    for (const env of [{ JWT_SECRET: "" }, { JWT_SECRET: "", NODE_ENV: "development" }, { JWT_SECRET: DEV_SECRET }] as Record<string, string>[]) {
      const r = await runNode(env);
      assert.equal(r.code, 78, `${JSON.stringify(env)}: ${r.stderr}`);
      assert.match(r.stderr, /configuration error: JWT_SECRET/);
      assert.doesNotMatch(r.stderr, STACK_LINE);
    }
  });

  it("a WEB_DIR that is not there stops the node with exit 78 naming it", async () => {
    const r = await runNode({ WEB_DIR: path.join(tempDir("chat-webdir-"), "missing") });
    assert.equal(r.timedOut, false, r.stderr);
    assert.equal(r.code, 78, r.stderr);
    assert.match(r.stderr, /configuration error: WEB_DIR /);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  });

  const unusableDataDirs: [string, () => string][] = [
    ["under a regular file", () => {
      const file = path.join(tempDir("chat-datadir-"), "file");
      fs.writeFileSync(file, "");
      return path.join(file, "data");
    }],
  ];
  if (fs.existsSync("/proc/self")) unusableDataDirs.push(["in procfs", () => "/proc/nope"]);
  for (const [what, dataDir] of unusableDataDirs) {
    it(`a DATA_DIR ${what} stops the node with exit 78, quickly, naming DATA_DIR`, async () => {
      const r = await runNode({ DATA_DIR: dataDir() }, 20_000);
      assert.equal(r.timedOut, false, `the node still ran after 20 s:\n${r.stderr}`);
      assert.equal(r.code, 78, r.stderr);
      assert.match(r.stderr, /configuration error: DATA_DIR /);
      assert.doesNotMatch(r.stderr, STACK_LINE);
    });
  }

  it("a PORT already taken stops the node with one line naming it, no stack trace", async () => {
    const port = await freePort();
    const blocker = net.createServer();
    await new Promise<void>((resolve, reject) => {
      blocker.once("error", reject);
      blocker.listen(port, "127.0.0.1", resolve);
    });
    try {
      const r = await runNode({ HOST: "127.0.0.1", PORT: String(port) }, 20_000);
      assert.equal(r.timedOut, false, `the node still ran after 20 s:\n${r.stderr}`);
      assert.notEqual(r.code, 0);
      assert.notEqual(r.code, null);
      assert.match(r.stderr, new RegExp(`cannot listen on HOST=127\\.0\\.0\\.1 PORT=${port}: EADDRINUSE`));
      assert.doesNotMatch(r.stderr, STACK_LINE);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  it("the README's configuration table lists every variable the node reads", () => {
    const readme = fs.readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");
    for (const v of CONFIG_VARIABLES) assert.match(readme, new RegExp(`^\\| (?:[^|]*, )?\`${v}\`(?:, [^|]*)? \\|`, "m"), `README documents ${v}`);
  });

  it("nothing but config.ts reads process.env in the node", () => {
    const src = path.join(REPO_ROOT, "services/chat-node/src");
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (p.endsWith(".ts") && !p.endsWith("config.ts") && fs.readFileSync(p, "utf8").includes("process.env")) offenders.push(path.relative(src, p));
      }
    };
    walk(src);
    assert.deepEqual(offenders, []);
  });
});
