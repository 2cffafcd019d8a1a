import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { io } from "socket.io-client";
import { api, connectUser, mintToken, startNode, stopAll, closeAllSockets, REPO_ROOT, TEST_SECRET, type NodeHandle } from "@chat/test-kit";

function b64url(obj: object): string {
  return Buffer.from(JSON.stringify(obj)).toString("base64url");
}

/** Connects with `auth` and resolves to the connect_error message, or "connected". */
function handshake(url: string, auth: unknown): Promise<string> {
  return new Promise((resolve) => {
    const s = io(url, { auth: auth as Record<string, unknown>, transports: ["websocket"], reconnection: false, forceNew: true });
    s.on("connect", () => {
      s.disconnect();
      resolve("connected");
    });
    s.on("connect_error", (err) => {
      s.disconnect();
      resolve(err.message);
    });
  });
}

describe("authentication", () => {
  let node: NodeHandle;
  before(async () => {
    node = await startNode();
  });
  after(async () => {
    closeAllSockets();
    await stopAll();
  });

  const now = Math.floor(Date.now() / 1000);
  const bad: [string, () => Promise<unknown>][] = [
    ["no auth at all", async () => undefined],
    ["no token", async () => ({})],
    ["empty token", async () => ({ token: "" })],
    ["a number", async () => ({ token: 42 })],
    ["garbage", async () => ({ token: "not.a.jwt" })],
    ["wrong secret", async () => ({ token: await mintToken("alice", { secret: "another-secret-0123456789" }) })],
    ["expired", async () => ({ token: await mintToken("alice", { expiresInSec: -60 }) })],
    ["alg none", async () => ({ token: `${b64url({ alg: "none", typ: "JWT" })}.${b64url({ sub: "alice", exp: now + 3600 })}.` })],
    ["empty subject", async () => ({ token: await mintToken("") })],
  ];

  for (const [name, auth] of bad) {
    it(`refuses a socket with ${name}: connect_error UNAUTHORIZED`, async () => {
      assert.equal(await handshake(node.url, await auth()), "UNAUTHORIZED");
    });
    it(`refuses REST with ${name}: 401`, async () => {
      const a = (await auth()) as { token?: unknown } | undefined;
      const token = typeof a?.token === "string" ? a.token : undefined;
      const res = await api(node.url, token).get("/conversations");
      assert.equal(res.status, 401);
      assert.deepEqual((res.body as { error: { code: string } }).error.code, "UNAUTHORIZED");
    });
  }

  it("accepts a valid token on both transports", async () => {
    const s = await connectUser(node.url, "alice");
    assert.ok(s.connected);
    const res = await api(node.url, await mintToken("alice")).get("/conversations");
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { conversations: [] });
  });

  it("answers /healthz, /readyz and /metrics without a token", async () => {
    for (const p of ["/healthz", "/readyz", "/metrics"]) assert.equal((await api(node.url).get(p)).status, 200, p);
  });

  it("`pnpm token <user>` mints a token the node accepts", () => {
    const token = execFileSync(process.execPath, ["services/chat-node/src/cli/token.ts", "carol"], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH, JWT_SECRET: TEST_SECRET },
    })
      .toString()
      .trim();
    return connectUser(node.url, "carol", { token }).then((s) => assert.ok(s.connected));
  });

  it("dev tokens: POST /dev/token signs in for the demo page", async () => {
    const res = await api(node.url).post<{ token: string }>("/dev/token", { userId: "dave" });
    assert.equal(res.status, 200);
    const s = await connectUser(node.url, "dave", { token: res.body.token });
    assert.ok(s.connected);
    assert.equal((await api(node.url).post("/dev/token", { userId: "" })).status, 400);
  });
});
