/**
 * rediss://: nodes talk to Debian's redis-server over TLS only (`--port 0 --tls-port`), with a
 * certificate made by openssl at run time. REDIS_TLS_CA_FILE names the CA to trust,
 * REDIS_TLS_SERVERNAME the name to check; the certificate is always verified, so a node that does
 * not trust it, or checks the wrong name, stays not ready; REDIS_TLS_CERT_FILE / REDIS_TLS_KEY_FILE
 * give a node the client certificate a Redis with `tls-auth-clients yes` requires. A file that
 * cannot be read or does not hold what it should stops the node with exit 78 naming its variable.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { randomUUID } from "node:crypto";
import type { MessageData, SendAck } from "@chat/protocol";
import {
  NODE_MAIN, TEST_SECRET, closeAllSockets, emitAck, eventually, freePort, hasOpenssl, makeCertificates, startNode, startProcess, stopAll, tempDir,
  waitForEvent, waitForOutput, type Proc, type TestCertificates,
} from "@chat/test-kit";
import { createConversation, joined } from "./helpers.ts";

const tlsBuilt = spawnSync("redis-server", ["--help"], { encoding: "utf8" });
const skip = !hasOpenssl()
  ? "openssl is not installed (bash scripts/ensure.sh system openssl)"
  : tlsBuilt.error
    ? "redis-server is not installed (bash scripts/ensure.sh system redis)"
    : false;

/** redis-server with TLS only: no plain port at all; `verifyClients`: it requires a client certificate from the CA. */
async function startTlsRedis(certs: TestCertificates, verifyClients = false): Promise<{ proc: Proc; port: number }> {
  const port = await freePort();
  const proc = startProcess("redis-server", [
    "--port", "0", "--tls-port", String(port), "--bind", "127.0.0.1",
    "--tls-cert-file", certs.certFile, "--tls-key-file", certs.keyFile, "--tls-ca-cert-file", certs.caFile,
    "--tls-auth-clients", verifyClients ? "yes" : "no", "--save", "", "--appendonly", "no", "--dir", tempDir("chat-redis-tls-"),
  ]);
  await waitForOutput(proc, (o) => o.includes("Ready to accept connections"), 15_000, "redis-server with TLS to start");
  return { proc, port };
}

async function readyz(url: string): Promise<{ status: number; body: { checks?: Record<string, string>; failed?: string[] } }> {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: (await res.json()) as { checks?: Record<string, string>; failed?: string[] } };
}

/** A node's exit and stderr, for a configuration it must refuse. */
async function refused(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const p = startProcess(process.execPath, [NODE_MAIN], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, HOST: "127.0.0.1", PORT: "0", JWT_SECRET: TEST_SECRET, DATA_DIR: tempDir("chat-redis-tls-bad-"), ...env },
  });
  let stderr = "";
  p.proc.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => p.proc.kill("SIGKILL"), 20_000);
  const { code } = await p.exited;
  clearTimeout(timer);
  return { code, stderr };
}

describe("rediss:// to a TLS-only Redis", { skip }, () => {
  let certs: TestCertificates;
  let redisPort: number;
  let named: TestCertificates;
  let namedPort: number;

  before(async () => {
    certs = makeCertificates();
    redisPort = (await startTlsRedis(certs)).port;
    // A certificate for a name only (no IP): reached by 127.0.0.1, it verifies only with REDIS_TLS_SERVERNAME.
    named = makeCertificates(["redis.chat.test"], { loopback: false });
    namedPort = (await startTlsRedis(named)).port;
  });
  after(async () => {
    closeAllSockets();
    await stopAll();
  });

  it("two nodes trusting REDIS_TLS_CA_FILE are ready and chat across Redis", async () => {
    // One store for both (the embedded one, shared as the local cluster shares it), one Redis over TLS.
    const env = { REDIS_URL: `rediss://127.0.0.1:${redisPort}`, REDIS_TLS_CA_FILE: certs.caFile, RATE_LIMIT_DISABLED: "1", DATA_DIR: tempDir("chat-redis-tls-data-") };
    const a = await startNode(env);
    const b = await startNode(env);
    for (const n of [a, b]) {
      const r = await eventually(async () => {
        const got = await readyz(n.url);
        return got.status === 200 ? got : undefined;
      }, 20_000, "the node to be ready over TLS");
      assert.equal(r?.body.checks?.redis, "ok");
    }
    const alice = `rtls-a-${randomUUID().slice(0, 8)}`;
    const bob = `rtls-b-${randomUUID().slice(0, 8)}`;
    const conv = await createConversation(a.url, alice, [bob]);
    const sa = await joined(a.url, alice, conv.id);
    const sb = await joined(b.url, bob, conv.id);
    const got = waitForEvent<MessageData>(sb, "newMessage", { timeoutMs: 10_000 });
    const ack = await emitAck<SendAck>(sa, "sendMessage", { conversationId: conv.id, message: "through TLS Redis" });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    assert.equal((await got).message, "through TLS Redis", "the message crossed nodes through Redis over TLS");
  });

  it("REDIS_TLS_SERVERNAME names the certificate's host when REDIS_URL is an address", async () => {
    const url = `rediss://127.0.0.1:${namedPort}`;
    const right = await startNode({ REDIS_URL: url, REDIS_TLS_CA_FILE: named.caFile, REDIS_TLS_SERVERNAME: "redis.chat.test" });
    await eventually(async () => (await readyz(right.url)).status === 200, 20_000, "ready with the right server name");
    // Without it the name checked is 127.0.0.1, which the certificate does not carry.
    const wrong = await startNode({ REDIS_URL: url, REDIS_TLS_CA_FILE: named.caFile });
    const r = await eventually(async () => {
      const got = await readyz(wrong.url);
      return got.status === 503 ? got : undefined;
    }, 20_000, "not ready without the server name");
    assert.deepEqual(r?.body.failed, ["redis"]);
    // Nor does a node verify a certificate from a CA it was not given (the system's CAs do not hold it).
    const untrusted = await startNode({ REDIS_URL: `rediss://127.0.0.1:${redisPort}` });
    const u = await eventually(async () => {
      const got = await readyz(untrusted.url);
      return got.status === 503 ? got : undefined;
    }, 20_000, "not ready without the CA");
    assert.deepEqual(u?.body.failed, ["redis"]);
    // Still ready after several retries: a refused certificate never turns into an accepted one.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await readyz(untrusted.url)).status, 503);
  });

  it("a Redis that verifies its clients admits a node with REDIS_TLS_CERT_FILE / REDIS_TLS_KEY_FILE, and only that one", async () => {
    const mutual = await startTlsRedis(certs, true);
    const url = `rediss://127.0.0.1:${mutual.port}`;
    const withCert = await startNode({ REDIS_URL: url, REDIS_TLS_CA_FILE: certs.caFile, REDIS_TLS_CERT_FILE: certs.clientCertFile, REDIS_TLS_KEY_FILE: certs.clientKeyFile });
    await eventually(async () => (await readyz(withCert.url)).status === 200, 20_000, "ready with a client certificate");
    const without = await startNode({ REDIS_URL: url, REDIS_TLS_CA_FILE: certs.caFile });
    const r = await eventually(async () => {
      const got = await readyz(without.url);
      return got.status === 503 ? got : undefined;
    }, 20_000, "not ready without one");
    assert.deepEqual(r?.body.failed, ["redis"]);
  });

  it("a CA file that is missing, unreadable or holds no certificate stops the node (exit 78, naming REDIS_TLS_CA_FILE)", async () => {
    const dir = tempDir("chat-redis-tls-ca-");
    const notPem = path.join(dir, "not-a-cert.pem");
    fs.writeFileSync(notPem, "hello\n");
    const unreadable = path.join(dir, "unreadable.pem");
    fs.copyFileSync(certs.caFile, unreadable);
    fs.chmodSync(unreadable, 0o000);
    const url = `rediss://127.0.0.1:${redisPort}`;
    const cases: [Record<string, string>, RegExp][] = [
      [{ REDIS_URL: url, REDIS_TLS_CA_FILE: path.join(dir, "missing.pem") }, /REDIS_TLS_CA_FILE .*does not exist/],
      [{ REDIS_URL: url, REDIS_TLS_CA_FILE: notPem }, /REDIS_TLS_CA_FILE .*holds no PEM certificate/],
      [{ REDIS_URL: url, REDIS_TLS_CA_FILE: dir }, /REDIS_TLS_CA_FILE .*directory/],
      [{ REDIS_URL: url.replace("rediss:", "redis:"), REDIS_TLS_CA_FILE: certs.caFile }, /REDIS_TLS_CA_FILE is set but REDIS_URL uses redis:\/\//],
      [{ REDIS_URL: url, REDIS_TLS_SERVERNAME: "bad name!" }, /REDIS_TLS_SERVERNAME must be a host name/],
      [{ REDIS_URL: url, REDIS_TLS_CERT_FILE: certs.clientCertFile }, /REDIS_TLS_CERT_FILE is set but REDIS_TLS_KEY_FILE is not/],
      [{ REDIS_URL: url, REDIS_TLS_CERT_FILE: certs.clientCertFile, REDIS_TLS_KEY_FILE: certs.keyFile }, /REDIS_TLS_KEY_FILE .*is not the private key/],
      [{ REDIS_URL: url, REDIS_TLS_CERT_FILE: notPem, REDIS_TLS_KEY_FILE: certs.clientKeyFile }, /REDIS_TLS_CERT_FILE .*holds no PEM certificate/],
    ];
    if (process.getuid?.() !== 0) cases.push([{ REDIS_URL: url, REDIS_TLS_CA_FILE: unreadable }, /REDIS_TLS_CA_FILE .*permission denied/]);
    for (const [env, message] of cases) {
      const r = await refused(env);
      assert.equal(r.code, 78, `${JSON.stringify(env)}: ${r.stderr}`);
      assert.match(r.stderr, /^configuration error: /);
      assert.match(r.stderr, message);
    }
  });
});
