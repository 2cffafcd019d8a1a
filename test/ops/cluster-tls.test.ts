/**
 * The local cluster's nginx over TLS and its request ids: a certificate made with openssl at run
 * time (CLUSTER_TLS_CERT_FILE / CLUSTER_TLS_KEY_FILE for `pnpm cluster`, ClusterOptions.tls here),
 * `https://` and `wss://` with socket.io-client trusting only that CA, chat across two nodes over
 * TLS; X-Request-Id set by nginx, forwarded to the node (its log line's reqId) and returned once on
 * every answer, the node's errors and nginx's own. The launcher refuses a missing or unreadable
 * certificate or key with exit 78 naming the variable.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import https from "node:https";
import type { TLSSocket } from "node:tls";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { io, type Socket } from "socket.io-client";
import type { MessageData, SendAck, JoinAck } from "@chat/protocol";
import { REPO_ROOT, TEST_SECRET, eventually, freePort, hasOpenssl, makeCertificates, mintToken, startProcess, stopAll, tempDir, waitForEvent, type TestCertificates } from "@chat/test-kit";
import { startCluster, type Cluster } from "../../infra/cluster/cluster.ts";
import { startNginx } from "../../infra/cluster/nginx.ts";

const NGINX = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"].find((p) => fs.existsSync(p));
const skip = !hasOpenssl()
  ? "openssl is not installed (bash scripts/ensure.sh system openssl)"
  : !NGINX
    ? "nginx is not installed (bash scripts/ensure.sh system nginx)"
    : false;
const CLI = path.join(REPO_ROOT, "infra/cluster/cli.ts");

/** GET over https trusting `ca` only; the raw headers, so that a header sent twice shows. */
function httpsGet(url: string, ca: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; rawHeaders: string[]; protocol: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, headers, timeout: 10_000, agent: false }, (res) => {
      const protocol = (res.socket as TLSSocket).getProtocol() ?? "";
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, rawHeaders: res.rawHeaders, protocol }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

function allValues(raw: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!);
  return out;
}

describe("the local cluster's nginx over TLS", { skip }, () => {
  let certs: TestCertificates;
  let cluster: Cluster;
  const sockets: Socket[] = [];

  before(async () => {
    certs = makeCertificates();
    cluster = await startCluster({
      nodes: 2,
      env: { JWT_SECRET: TEST_SECRET, LOG_LEVEL: "debug", RATE_LIMIT_DISABLED: "1", SHUTDOWN_TIMEOUT_MS: "3000" },
      tls: { certFile: certs.certFile, keyFile: certs.keyFile },
      install: false,
    });
  });
  after(async () => {
    for (const s of sockets) s.disconnect();
    await cluster?.stop();
    await stopAll();
  });

  it("answers https:// with the certificate, TLS 1.2 or 1.3, and plain http still", async () => {
    assert.ok(cluster.tlsUrl?.startsWith("https://127.0.0.1:"));
    const res = await httpsGet(`${cluster.tlsUrl}/healthz`, certs.ca);
    assert.equal(res.status, 200);
    assert.match(res.protocol, /^TLSv1\.[23]$/);
    assert.equal((JSON.parse(res.body) as { status: string }).status, "ok");
    // A client that does not trust the CA is refused: the certificate is the one given.
    await assert.rejects(httpsGet(`${cluster.tlsUrl}/healthz`, fs.readFileSync(makeCertificates().caFile, "utf8")), /self[- ]signed|unable to verify|certificate/i);
    assert.equal((await fetch(`${cluster.url}/healthz`)).status, 200);
  });

  it("carries Socket.IO over wss:// (WebSocket) and https:// long-polling (then upgraded), between two clients", async () => {
    const alice = `tls-alice-${randomUUID().slice(0, 8)}`;
    const bob = `tls-bob-${randomUUID().slice(0, 8)}`;
    const aliceToken = await mintToken(alice);
    const created = await fetch(`${cluster.url}/conversations`, {
      method: "POST",
      headers: { authorization: `Bearer ${aliceToken}`, "content-type": "application/json" },
      body: JSON.stringify({ members: [bob] }),
    });
    assert.equal(created.status, 201);
    const conversationId = ((await created.json()) as { id: string }).id;
    const connect = async (userId: string, transports: ("websocket" | "polling")[]) => {
      const s = io(cluster.tlsUrl!.replace(/^https:/, "wss:"), { auth: { token: await mintToken(userId) }, ca: certs.ca, transports, withCredentials: true, reconnection: false, forceNew: true });
      sockets.push(s);
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${userId} did not connect over TLS`)), 15_000);
        s.once("connect", () => (clearTimeout(t), resolve()));
        s.once("connect_error", (err) => (clearTimeout(t), reject(err)));
      });
      const joined = (await s.timeout(10_000).emitWithAck("joinConversation", { conversationId })) as JoinAck;
      assert.equal(joined.ok, true, JSON.stringify(joined));
      return s;
    };
    const a = await connect(alice, ["websocket"]);
    // socket.io-client's defaults: polling first, then the upgrade, sticky through the cookie.
    const b = await connect(bob, ["polling", "websocket"]);
    assert.equal(a.io.engine.transport.name, "websocket");
    await eventually(() => b.io.engine.transport.name === "websocket", 15_000, "bob's upgrade to WebSocket over TLS");
    const got = waitForEvent<MessageData>(b, "newMessage", { timeoutMs: 10_000 });
    const ack = (await a.timeout(10_000).emitWithAck("sendMessage", { conversationId, message: "over TLS" })) as SendAck;
    assert.equal(ack.ok, true, JSON.stringify(ack));
    assert.equal((await got).message, "over TLS");
  });

  it("sets X-Request-Id: forwarded to the node (its log line's reqId) and returned once, on success and on errors", async () => {
    const token = await mintToken(`tls-rid-${randomUUID().slice(0, 8)}`);
    const ok = await httpsGet(`${cluster.tlsUrl}/limits`, certs.ca, { authorization: `Bearer ${token}` });
    assert.equal(ok.status, 200);
    const ids = allValues(ok.rawHeaders, "x-request-id");
    assert.equal(ids.length, 1, `one X-Request-Id, got ${JSON.stringify(ids)}`);
    assert.match(ids[0]!, /^[0-9a-f]{32}$/, "nginx's $request_id");
    // The node logged the request under nginx's id, and nginx's access log has it too.
    await eventually(() => cluster.nodes.some((n) => n.proc().output().includes(`"reqId":"${ids[0]}"`)), 10_000, "a node's log line with nginx's request id");
    await eventually(() => cluster.nginx.accessLog().includes(`request_id=${ids[0]}`), 10_000, "nginx's access log line with the id");

    // A client's own X-Request-Id does not replace nginx's: the edge names the request.
    const given = await httpsGet(`${cluster.tlsUrl}/healthz`, certs.ca, { "x-request-id": "client-chosen" });
    assert.deepEqual(allValues(given.rawHeaders, "x-request-id").length, 1);
    assert.notEqual(allValues(given.rawHeaders, "x-request-id")[0], "client-chosen");

    const errors: [string, Record<string, string>, number][] = [
      [`/conversations/${randomUUID()}`, { authorization: `Bearer ${token}` }, 404], // the node's 404
      ["/conversations", {}, 401], // the node's 401
      ["/conversations/%E0%A4%A", { authorization: `Bearer ${token}` }, 400], // the node's router 400
      ["/metrics", {}, 404], // nginx's own answer
    ];
    for (const [p, headers, status] of errors) {
      const res = await httpsGet(`${cluster.tlsUrl}${p}`, certs.ca, headers);
      assert.equal(res.status, status, p);
      const got = allValues(res.rawHeaders, "x-request-id");
      assert.equal(got.length, 1, `${p}: one X-Request-Id, got ${JSON.stringify(got)}`);
      assert.match(got[0]!, /^[0-9a-f]{32}$/, p);
    }
    // Engine.IO's answers too.
    const engine = await httpsGet(`${cluster.tlsUrl}/socket.io/?EIO=4&transport=polling`, certs.ca);
    assert.equal(engine.status, 200);
    assert.equal(allValues(engine.rawHeaders, "x-request-id").length, 1);
  });
});

describe("nginx's own answers", { skip }, () => {
  it("a 502 when no node answers carries the request id too, over TLS, and the access log has it", async () => {
    const certs = makeCertificates();
    const dead = await freePort(); // nothing listens there
    const tlsPort = await freePort();
    const nginx = await startNginx({
      nginxBin: NGINX!,
      dir: path.join(tempDir("nginx-502-"), "nginx"),
      listen: `127.0.0.1:${await freePort()}`,
      statusPort: await freePort(),
      servers: [{ port: dead }],
      tls: { listen: `127.0.0.1:${tlsPort}`, certFile: certs.certFile, keyFile: certs.keyFile },
    });
    try {
      const res = await httpsGet(`https://127.0.0.1:${tlsPort}/conversations`, certs.ca);
      assert.equal(res.status, 502);
      const ids = allValues(res.rawHeaders, "x-request-id");
      assert.equal(ids.length, 1);
      assert.match(ids[0]!, /^[0-9a-f]{32}$/);
      await eventually(() => nginx.accessLog().includes(`request_id=${ids[0]}`), 10_000, "the 502's access log line with its id");
    } finally {
      await nginx.stop();
    }
  });
});

describe("pnpm cluster's TLS variables", { skip }, () => {
  after(async () => {
    await stopAll();
  });

  async function launch(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
    const p = startProcess(process.execPath, [CLI], { env: { PATH: process.env.PATH, HOME: process.env.HOME, CLUSTER_DIR: tempDir("cluster-tls-"), CLUSTER_PORT: "0", CLUSTER_PROMETHEUS: "0", ...env } });
    let stderr = "";
    p.proc.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.proc.kill("SIGTERM"), 20_000);
    const { code } = await p.exited;
    clearTimeout(timer);
    return { code, stderr };
  }

  it("a missing, unreadable or wrong file stops the launcher with exit 78 naming the variable", async () => {
    const certs = makeCertificates();
    const dir = tempDir("cluster-tls-bad-");
    const unreadable = path.join(dir, "unreadable.pem");
    fs.copyFileSync(certs.keyFile, unreadable);
    fs.chmodSync(unreadable, 0o000);
    const cases: [Record<string, string>, string][] = [
      [{ CLUSTER_TLS_CERT_FILE: path.join(dir, "missing.crt"), CLUSTER_TLS_KEY_FILE: certs.keyFile }, "CLUSTER_TLS_CERT_FILE"],
      [{ CLUSTER_TLS_CERT_FILE: certs.certFile, CLUSTER_TLS_KEY_FILE: path.join(dir, "missing.key") }, "CLUSTER_TLS_KEY_FILE"],
      [{ CLUSTER_TLS_CERT_FILE: certs.certFile }, "CLUSTER_TLS_KEY_FILE"],
      [{ CLUSTER_TLS_KEY_FILE: certs.keyFile }, "CLUSTER_TLS_CERT_FILE"],
      [{ CLUSTER_TLS_CERT_FILE: certs.keyFile, CLUSTER_TLS_KEY_FILE: certs.keyFile }, "CLUSTER_TLS_CERT_FILE"],
      [{ CLUSTER_TLS_CERT_FILE: certs.certFile, CLUSTER_TLS_KEY_FILE: certs.certFile }, "CLUSTER_TLS_KEY_FILE"],
      [{ CLUSTER_TLS_CERT_FILE: certs.certFile, CLUSTER_TLS_KEY_FILE: certs.keyFile, CLUSTER_TLS_PORT: "x" }, "CLUSTER_TLS_PORT"],
      [{ CLUSTER_TLS_CERT_FILE: dir, CLUSTER_TLS_KEY_FILE: certs.keyFile }, "CLUSTER_TLS_CERT_FILE"],
      // A certificate with another certificate's key.
      [{ CLUSTER_TLS_CERT_FILE: certs.certFile, CLUSTER_TLS_KEY_FILE: makeCertificates().keyFile }, "CLUSTER_TLS_KEY_FILE"],
    ];
    // Root reads any file whatever its mode: the unreadable case only means something for another user.
    if (process.getuid?.() !== 0) cases.push([{ CLUSTER_TLS_CERT_FILE: certs.certFile, CLUSTER_TLS_KEY_FILE: unreadable }, "CLUSTER_TLS_KEY_FILE"]);
    for (const [env, name] of cases) {
      const r = await launch(env);
      assert.equal(r.code, 78, `${JSON.stringify(env)}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^cluster: configuration error: ${name} `), JSON.stringify(env));
    }
  });
});
