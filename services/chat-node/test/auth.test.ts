import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { io, type Socket } from "socket.io-client";
import { SignJWT, type JWTPayload } from "jose";
import { api, connectUser, emitAck, mintToken, startNode, stopAll, closeAllSockets, REPO_ROOT, TEST_SECRET, type NodeHandle } from "@chat/test-kit";
import { createConversation, history } from "./helpers.ts";

/** A token with exactly these claims, signed with the test secret. */
function signClaims(claims: JWTPayload): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(new TextEncoder().encode(TEST_SECRET));
}

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
    ["no subject", async () => ({ token: await signClaims({ exp: now + 3600 }) })],
    ["a numeric subject", async () => ({ token: await signClaims({ sub: 42 as unknown as string, exp: now + 3600 }) })],
    ["a subject of 129 characters", async () => ({ token: await mintToken("u".repeat(129)) })],
    ["a subject with a lone surrogate", async () => ({ token: await mintToken("al\ud800ice") })],
    ["not valid yet (nbf in an hour)", async () => ({ token: await signClaims({ sub: "alice", nbf: now + 3600 }) })],
    ["a valid token with base64 padding on its signature", async () => ({ token: `${await mintToken("alice")}=` })],
    ["a valid token with a stray character in its signature", async () => ({ token: `${await mintToken("alice")}!` })],
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
      // RFC 6750: the scheme, and invalid_token when a token was given (an empty one is none).
      assert.equal(res.headers.get("www-authenticate"), token ? 'Bearer error="invalid_token"' : "Bearer");
    });
  }

  it("answers another scheme's 401 with the Bearer scheme alone (RFC 6750: no error code then)", async () => {
    const res = await fetch(`${node.url}/conversations`, { headers: { authorization: "Basic YWxpY2U6c2VjcmV0" } });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("www-authenticate"), "Bearer");
  });

  it("accepts a valid token on both transports", async () => {
    const s = await connectUser(node.url, "alice");
    assert.ok(s.connected);
    const res = await api(node.url, await mintToken("alice")).get("/conversations");
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { conversations: [] });
  });

  it("accepts a token without exp on both transports (exp is honoured when present, not required)", async () => {
    const token = await signClaims({ sub: "frank" });
    const s = await connectUser(node.url, "frank", { token });
    assert.ok(s.connected);
    assert.equal((await api(node.url, token).get("/conversations")).status, 200);
  });

  it("a socket lives as long as its token: past exp its events are refused and its transport closed; a client with auth as a function reconnects with a fresh token", async () => {
    const conv = await createConversation(node.url, "grace", ["heidi"]);
    const expSec = Math.floor(Date.now() / 1000) + 2;
    const tokens = [await mintToken("grace", { expiresInSec: expSec - Math.floor(Date.now() / 1000) }), await mintToken("grace")];
    let handshakes = 0;
    const s: Socket = io(node.url, {
      auth: (cb) => cb({ token: tokens[Math.min(handshakes++, 1)] }),
      transports: ["websocket"],
      forceNew: true,
      reconnectionDelay: 50,
      reconnectionDelayMax: 100,
    });
    try {
      const reasons: string[] = [];
      s.on("disconnect", (reason) => reasons.push(reason));
      await new Promise<void>((resolve, reject) => {
        s.once("connect", resolve);
        s.once("connect_error", reject);
      });
      assert.equal((await emitAck<{ ok: boolean }>(s, "joinConversation", { conversationId: conv.id })).ok, true);
      // Wait for the expiry itself, then send at once: refused UNAUTHORIZED, or already cut by the sweep; never stored.
      await new Promise((r) => setTimeout(r, Math.max(0, expSec * 1000 - Date.now())));
      const answer = await Promise.race([
        emitAck<{ ok: boolean; error?: { code: string } }>(s, "sendMessage", { conversationId: conv.id, message: "after exp", clientMessageId: "late" }),
        new Promise<{ ok: boolean; error?: { code: string } }>((resolve) => s.once("disconnect", () => resolve({ ok: false, error: { code: "DISCONNECTED" } }))),
      ]);
      assert.equal(answer.ok, false);
      assert.ok(["UNAUTHORIZED", "DISCONNECTED"].includes(answer.error?.code ?? ""), `got ${answer.error?.code}`);
      // The transport is closed within the sweep's second; the client reconnects with the fresh token.
      const deadline = Date.now() + 5000;
      while ((handshakes < 2 || !s.connected) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      assert.ok(s.connected, "reconnected");
      assert.equal(handshakes, 2, "one more handshake, with the fresh token");
      assert.equal(reasons[0], "transport close", "a transport close, which socket.io-client follows by reconnecting");
      assert.deepEqual((await history(node.url, "heidi", conv.id)).messages, [], "nothing stored after exp");
      const ok = await emitAck<{ ok: boolean }>(s, "sendMessage", { conversationId: conv.id, message: "fresh token" });
      assert.equal(ok.ok, true);
    } finally {
      s.disconnect();
    }
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

  it("dev tokens: POST /dev/token signs in for the demo page (DEV_INSECURE_TOKENS=1, as test nodes run)", async () => {
    const res = await api(node.url).post<{ token: string }>("/dev/token", { userId: "dave" });
    assert.equal(res.status, 200);
    const s = await connectUser(node.url, "dave", { token: res.body.token });
    assert.ok(s.connected);
    assert.equal((await api(node.url).post("/dev/token", { userId: "" })).status, 400);
  });

  it("without DEV_INSECURE_TOKENS there is no POST /dev/token, whatever NODE_ENV says", async () => {
    for (const NODE_ENV of ["", "development", "test"]) {
      const plain = await startNode({ DEV_INSECURE_TOKENS: "0", NODE_ENV });
      const res = await api(plain.url).post("/dev/token", { userId: "mallory" });
      assert.equal(res.status, 404, `NODE_ENV=${NODE_ENV}`);
      await plain.stop();
    }
  });

  it("`pnpm token` without JWT_SECRET signs with the published development secret, which only a demo node accepts", async () => {
    const token = execFileSync(process.execPath, ["services/chat-node/src/cli/token.ts", "erin"], { cwd: REPO_ROOT, env: { PATH: process.env.PATH }, stdio: ["ignore", "pipe", "pipe"] })
      .toString()
      .trim();
    await assert.rejects(connectUser(node.url, "erin", { token }), /UNAUTHORIZED/, "a node with its own secret refuses it");
    const demo = await startNode({ JWT_SECRET: "", DEV_INSECURE_TOKENS: "1" });
    const s = await connectUser(demo.url, "erin", { token });
    assert.ok(s.connected);
    s.disconnect();
    await demo.stop();
  });
});
