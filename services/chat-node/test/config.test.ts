import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { NODE_MAIN, REPO_ROOT } from "@chat/test-kit";
import { CONFIG_VARIABLES, ConfigError, loadConfig } from "../src/config.ts";

describe("configuration", () => {
  it("has the contract's defaults", () => {
    const c = loadConfig({});
    assert.equal(c.port, 3001);
    assert.deepEqual(c.corsOrigins, ["http://localhost:3000"]);
    assert.equal(c.redisUrl, undefined);
    assert.equal(c.mongoUrl, undefined);
    assert.equal(c.typingTimeoutMs, 3000);
    assert.equal(c.maxMessageLength, 4000);
    assert.equal(c.shutdownTimeoutMs, 10_000);
    assert.deepEqual(c.rateSend, { perSec: 20, burst: 40 });
    assert.equal(c.devTokens, true);
    assert.equal(c.socketMaxOutgoingBytes, 8 * 1024 * 1024);
    assert.equal(c.broadcastDirectWrite, true);
    assert.equal(loadConfig({ SOCKET_MAX_OUTGOING_BYTES: "0" }).socketMaxOutgoingBytes, 0, "0: no bound");
    assert.equal(loadConfig({ BROADCAST_DIRECT_WRITE: "0" }).broadcastDirectWrite, false);
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
    ["CORS_ORIGINS", { CORS_ORIGINS: "http://ok.example,not-an-origin" }],
    ["RATE_LIMIT_DISABLED", { RATE_LIMIT_DISABLED: "maybe" }],
    ["RATE_SEND_PER_SEC", { RATE_SEND_PER_SEC: "fast" }],
    ["LOG_LEVEL", { LOG_LEVEL: "loud" }],
    ["REDIS_ADAPTER", { REDIS_ADAPTER: "magic" }],
    ["JWT_SECRET", { NODE_ENV: "production" }],
    ["JWT_SECRET", { JWT_SECRET: "short" }],
    ["DEV_TOKENS", { NODE_ENV: "production", JWT_SECRET: "a-production-secret-0123456789", DEV_TOKENS: "1" }],
    ["SOCKET_MAX_BUFFER_BYTES", { SOCKET_MAX_BUFFER_BYTES: "2000", MAX_MESSAGE_LENGTH: "4000" }],
    ["SOCKET_MAX_OUTGOING_BYTES", { SOCKET_MAX_OUTGOING_BYTES: "1000" }],
    ["SOCKET_MAX_OUTGOING_BYTES", { SOCKET_MAX_OUTGOING_BYTES: "lots" }],
    ["BROADCAST_DIRECT_WRITE", { BROADCAST_DIRECT_WRITE: "sometimes" }],
  ];
  for (const [name, env] of bad) {
    it(`refuses ${JSON.stringify(env)} naming ${name}`, () => {
      assert.throws(() => loadConfig(env), (e: Error) => e instanceof ConfigError && e.message.includes(name));
    });
  }

  it("production turns dev tokens off by default", () => {
    const c = loadConfig({ NODE_ENV: "production", JWT_SECRET: "a-production-secret-0123456789" });
    assert.equal(c.devTokens, false);
  });

  it("a malformed variable stops the node with a message naming it", () => {
    const r = spawnSync(process.execPath, [NODE_MAIN], { env: { PATH: process.env.PATH, PORT: "not-a-port" }, timeout: 20_000 });
    assert.equal(r.status, 78);
    assert.match(r.stderr.toString(), /PORT must be an integer/);
  });

  it("the README's configuration table lists every variable the node reads", () => {
    const readme = fs.readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");
    for (const v of CONFIG_VARIABLES) assert.match(readme, new RegExp(`\\| \`${v}\` \\|`), `README documents ${v}`);
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
