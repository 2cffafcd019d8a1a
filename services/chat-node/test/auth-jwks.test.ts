/**
 * Tokens from an identity provider: a real node verifying RS256/ES256 against a local JWKS server
 * (node:http on 127.0.0.1, port 0) or a public key file. Key rotation, an unknown `kid`, `alg: none`,
 * an HS256 token signed with the public key (algorithm confusion), `iss`/`aud`, an expired token on a
 * live socket, and a provider that cannot be reached.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { io } from "socket.io-client";
import { SignJWT, exportJWK, type JWK, type JWTPayload } from "jose";
import { api, closeAllSockets, connectUser, eventually, freePort, mintToken, sleep, startNode, stopAll, tempDir, type NodeHandle } from "@chat/test-kit";
import { ConfigError, loadConfig } from "../src/config.ts";

const ISSUER = "https://idp.test";
const AUDIENCE = "chat";

interface Key {
  kid: string;
  alg: "RS256" | "ES256";
  privateKey: KeyObject;
  publicKey: KeyObject;
  jwk: JWK;
}

async function makeKey(kid: string, alg: "RS256" | "ES256"): Promise<Key> {
  const { privateKey, publicKey } = alg === "RS256" ? generateKeyPairSync("rsa", { modulusLength: 2048 }) : generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { kid, alg, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
}

/** A token signed by `key`, with the provider's `iss` and `aud` unless `claims` says otherwise. */
function idpToken(key: Key, claims: JWTPayload = {}, header: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: "alice", iss: ISSUER, aud: AUDIENCE, iat: now, exp: now + 3600, ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT", ...header })
    .sign(key.privateKey);
}

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

/** Connects with `token` and resolves to "connected" or the connect_error message. */
function handshake(url: string, token: string): Promise<string> {
  return new Promise((resolve) => {
    const s = io(url, { auth: { token }, transports: ["websocket"], reconnection: false, forceNew: true });
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

/** The identity provider's JWKS endpoint: serves `keys`, counts fetches, can hang or fail. */
async function startJwks(): Promise<{ url: string; keys: JWK[]; fetches: number; mode: "ok" | "hang" | "500"; close(): Promise<void> }> {
  const state = { keys: [] as JWK[], fetches: 0, mode: "ok" as "ok" | "hang" | "500" };
  const server = http.createServer((req, res) => {
    state.fetches++;
    if (state.mode === "hang") return; // never answers: the node's timeout must end the fetch
    if (state.mode === "500") return void res.writeHead(500).end();
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  });
}

describe("tokens from a JWKS URL", () => {
  let jwks: Awaited<ReturnType<typeof startJwks>>;
  let node: NodeHandle;
  let rsa: Key;
  let ec: Key;
  before(async () => {
    jwks = await startJwks();
    rsa = await makeKey("k1", "RS256");
    ec = await makeKey("k2", "ES256");
    jwks.keys.push(rsa.jwk, ec.jwk);
    node = await startNode({
      JWT_SECRET: "",
      DEV_INSECURE_TOKENS: "0",
      JWT_JWKS_URL: jwks.url,
      JWT_ISSUER: ISSUER,
      JWT_AUDIENCE: AUDIENCE,
      JWT_JWKS_COOLDOWN_MS: "1000",
      JWT_JWKS_TIMEOUT_MS: "500",
    });
  });
  after(async () => {
    closeAllSockets();
    await stopAll();
    await jwks.close();
  });

  it("accepts RS256 and ES256 tokens from the provider, by socket and REST", async () => {
    assert.equal(await handshake(node.url, await idpToken(rsa)), "connected");
    assert.equal(await handshake(node.url, await idpToken(ec, { sub: "bob" })), "connected");
    const res = await api(node.url, await idpToken(ec, { sub: "bob" })).get<{ conversations: unknown[] }>("/conversations");
    assert.equal(res.status, 200);
    assert.ok(jwks.fetches >= 1);
  });

  it("refuses a wrong or missing iss or aud, HS256 tokens, alg none and algorithm confusion, without fetching keys for them", async () => {
    await handshake(node.url, await idpToken(rsa)); // keys cached
    const fetches = jwks.fetches;
    const now = Math.floor(Date.now() / 1000);
    const publicPem = rsa.publicKey.export({ type: "spki", format: "pem" }).toString();
    const cases: [string, string][] = [
      // First, within the cooldown of the fetch above: k1 is an RSA key, so no key matches ES256 + k1.
      ["ES256 naming the RSA key's kid", await idpToken(ec, {}, { alg: "ES256", kid: "k1" })],
      ["another issuer", await idpToken(rsa, { iss: "https://evil.test" })],
      ["no issuer", await idpToken(rsa, { iss: undefined })],
      ["another audience", await idpToken(rsa, { aud: "other-service" })],
      ["no audience", await idpToken(rsa, { aud: undefined })],
      ["HS256 with the node's old secret", await mintToken("alice")],
      ["alg none", `${b64url({ alg: "none", typ: "JWT", kid: "k1" })}.${b64url({ sub: "alice", iss: ISSUER, aud: AUDIENCE, exp: now + 3600 })}.`],
      [
        "HS256 signed with the provider's public key (algorithm confusion)",
        await new SignJWT({ sub: "alice", iss: ISSUER, aud: AUDIENCE, exp: now + 3600 }).setProtectedHeader({ alg: "HS256", kid: "k1" }).sign(new TextEncoder().encode(publicPem)),
      ],
      [
        "HS256 signed with the JWK's modulus",
        await new SignJWT({ sub: "alice", iss: ISSUER, aud: AUDIENCE, exp: now + 3600 }).setProtectedHeader({ alg: "HS256", kid: "k1" }).sign(new TextEncoder().encode(String(rsa.jwk.n))),
      ],
      ["RS512 (not accepted)", await new SignJWT({ sub: "alice", iss: ISSUER, aud: AUDIENCE, exp: now + 3600 }).setProtectedHeader({ alg: "RS512", kid: "k1" }).sign(rsa.privateKey)],
      ["expired", await idpToken(rsa, { exp: now - 10 })],
      ["not valid yet", await idpToken(rsa, { nbf: now + 600 })],
      ["signed by a key of the same kid that the provider never published", await idpToken({ ...(await makeKey("k1", "RS256")) })],
    ];
    for (const [what, token] of cases) {
      assert.equal(await handshake(node.url, token), "UNAUTHORIZED", what);
      assert.equal((await api(node.url, token).get("/conversations")).status, 401, `${what} (REST)`);
    }
    assert.equal(jwks.fetches, fetches, "no refused token made the node fetch keys (all named a known kid or a refused algorithm)");
  });

  it("an unknown kid fetches again (at most once per cooldown); after a rotation the new key is accepted and the retired one refused", async () => {
    const next = await makeKey("k3", "RS256");
    const early = await idpToken(next);
    await sleep(1100); // past the cooldown of the last fetch
    const before = jwks.fetches;
    assert.equal(await handshake(node.url, early), "UNAUTHORIZED", "not published yet");
    assert.equal(jwks.fetches, before + 1, "one fetch for the unknown kid");
    // A flood of unknown kids within the cooldown fetches nothing more.
    for (let i = 0; i < 20; i++) assert.equal(await handshake(node.url, await idpToken({ ...next, kid: `random-${i}` })), "UNAUTHORIZED");
    assert.ok(jwks.fetches <= before + 2, `fetches during the cooldown: ${jwks.fetches - before}`);
    // The provider rotates: k3 in, k1 out.
    jwks.keys.splice(0, jwks.keys.length, ec.jwk, next.jwk);
    await sleep(1100);
    assert.equal(await handshake(node.url, await idpToken(next)), "connected", "the new key, fetched on its unknown kid");
    assert.equal(await handshake(node.url, await idpToken(rsa)), "UNAUTHORIZED", "the retired key is gone with the refreshed set");
    jwks.keys.splice(0, jwks.keys.length, rsa.jwk, ec.jwk, next.jwk);
    await sleep(1100);
    await handshake(node.url, await idpToken({ ...next, kid: "refresh-now" })); // an unknown kid refreshes the set
  });

  it("a socket whose provider token expires is closed, and cannot come back with it", async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await idpToken(rsa, { sub: "erin", exp: now + 2 });
    const socket = await connectUser(node.url, "erin", { token });
    const closed = new Promise<string>((r) => socket.once("disconnect", (reason) => r(reason)));
    const reason = await Promise.race([closed, sleep(10_000).then(() => "still connected")]);
    assert.equal(reason, "transport close");
    assert.equal(await handshake(node.url, token), "UNAUTHORIZED");
  });

  it("while the provider does not answer, the keys it served last keep verifying; unknown kids fail within the timeout", async () => {
    jwks.mode = "hang";
    try {
      await sleep(1100);
      const started = Date.now();
      assert.equal(await handshake(node.url, await idpToken({ ...rsa, kid: "unknown-while-down" })), "UNAUTHORIZED");
      assert.ok(Date.now() - started < 8000, "the fetch was bounded by JWT_JWKS_TIMEOUT_MS");
      assert.equal(await handshake(node.url, await idpToken(rsa)), "connected", "cached keys still verify");
    } finally {
      jwks.mode = "ok";
    }
  });
});

describe("a provider that cannot be reached from the start", () => {
  after(async () => {
    await stopAll();
  });
  it("answers UNAVAILABLE (503), not UNAUTHORIZED, to REST, and keeps serving", async () => {
    const closedPort = await freePort();
    const node = await startNode({ JWT_SECRET: "", DEV_INSECURE_TOKENS: "0", JWT_JWKS_URL: `http://127.0.0.1:${closedPort}/jwks.json`, JWT_JWKS_TIMEOUT_MS: "300" });
    const key = await makeKey("k1", "RS256");
    const res = await api(node.url, await idpToken(key)).get<{ error: { code: string } }>("/conversations");
    assert.equal(res.status, 503);
    assert.equal(res.body.error.code, "UNAVAILABLE");
    assert.equal((await fetch(`${node.url}/healthz`)).status, 200);
    assert.equal(await handshake(node.url, await idpToken(key)), "UNAUTHORIZED");
  });
});

describe("tokens verified against a public key file", () => {
  let node: NodeHandle;
  let rsa: Key;
  const dir = tempDir("chat-keys-");
  before(async () => {
    rsa = await makeKey("file", "RS256");
    const file = path.join(dir, "idp.pem");
    fs.writeFileSync(file, rsa.publicKey.export({ type: "spki", format: "pem" }));
    node = await startNode({ JWT_PUBLIC_KEY_FILE: file, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, JWT_CLOCK_TOLERANCE_S: "30" });
  });
  after(async () => {
    closeAllSockets();
    await stopAll();
  });

  it("accepts the key's RS256 tokens; HS256 ones need iss and aud too; algorithm confusion and other algorithms are refused", async () => {
    assert.equal(await handshake(node.url, await idpToken(rsa)), "connected");
    assert.equal(await handshake(node.url, await mintToken("alice", {})), "UNAUTHORIZED", "HS256 tokens lack iss and aud");
    const now = Math.floor(Date.now() / 1000);
    const publicPem = rsa.publicKey.export({ type: "spki", format: "pem" }).toString();
    const confused = await new SignJWT({ sub: "alice", iss: ISSUER, aud: AUDIENCE, exp: now + 3600 }).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(publicPem));
    assert.equal(await handshake(node.url, confused), "UNAUTHORIZED", "algorithm confusion");
    const ec = await makeKey("file", "ES256");
    assert.equal(await handshake(node.url, await idpToken(ec)), "UNAUTHORIZED", "ES256 is not the file key's algorithm");
  });

  it("allows JWT_CLOCK_TOLERANCE_S of skew on exp", async () => {
    const now = Math.floor(Date.now() / 1000);
    assert.equal(await handshake(node.url, await idpToken(rsa, { exp: now - 10 })), "connected", "10 s late, 30 s allowed");
    assert.equal(await handshake(node.url, await idpToken(rsa, { exp: now - 60 })), "UNAUTHORIZED", "60 s late");
  });

  it("config: a private key, a short RSA key, another curve, or a JWK Set with private parts are refused; a JWK Set or an EC P-256 key is taken", async () => {
    const write = (name: string, data: string | Buffer) => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, data);
      return f;
    };
    const refuses = (file: string, re: RegExp) =>
      assert.throws(() => loadConfig({ JWT_PUBLIC_KEY_FILE: file }), (e: Error) => e instanceof ConfigError && e.message.includes("JWT_PUBLIC_KEY_FILE") && re.test(e.message), file);
    refuses(write("private.pem", rsa.privateKey.export({ type: "pkcs8", format: "pem" })), /private key/);
    refuses(write("private-rsa.pem", rsa.privateKey.export({ type: "pkcs1", format: "pem" })), /private key/);
    refuses(write("short.pem", generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ type: "spki", format: "pem" })), /1024-bit/);
    refuses(write("p384.pem", generateKeyPairSync("ec", { namedCurve: "P-384" }).publicKey.export({ type: "spki", format: "pem" })), /secp384r1/);
    refuses(write("garbage.pem", "hello"), /no PEM/);
    refuses(write("jwks-private.json", JSON.stringify({ keys: [await exportJWK(rsa.privateKey)] })), /private/);
    refuses(write("not-jwks.json", JSON.stringify({ kty: "RSA" })), /JWK Set/);
    const set = loadConfig({ JWT_PUBLIC_KEY_FILE: write("jwks.json", JSON.stringify({ keys: [rsa.jwk] })) });
    assert.deepEqual(set.jwt.algorithms, ["RS256", "ES256"]);
    assert.equal(set.jwt.localJwks?.keys.length, 1);
    const ec = loadConfig({ JWT_PUBLIC_KEY_FILE: write("ec.pem", generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" })) });
    assert.deepEqual(ec.jwt.algorithms, ["ES256"]);
    assert.equal(ec.jwt.secret, undefined, "no secret, no HS256");
    assert.throws(() => loadConfig({ JWT_PUBLIC_KEY_FILE: path.join(dir, "ec.pem"), JWT_ALGORITHMS: "RS256" }), /holds a ES256 key/);
    assert.throws(() => loadConfig({ JWT_PUBLIC_KEY_FILE: path.join(dir, "ec.pem"), JWT_JWKS_URL: "https://idp.example/jwks" }), /both set/);
  });
});

describe("a node started with a JWK Set file verifies by kid", () => {
  after(async () => {
    closeAllSockets();
    await stopAll();
  });
  it("accepts each listed key and refuses others", async () => {
    const a = await makeKey("a", "RS256");
    const b = await makeKey("b", "ES256");
    const file = path.join(tempDir("chat-jwks-file-"), "jwks.json");
    fs.writeFileSync(file, JSON.stringify({ keys: [a.jwk, b.jwk] }));
    const node = await startNode({ JWT_SECRET: "", DEV_INSECURE_TOKENS: "0", JWT_PUBLIC_KEY_FILE: file });
    assert.equal(await handshake(node.url, await idpToken(a)), "connected");
    assert.equal(await handshake(node.url, await idpToken(b)), "connected");
    assert.equal(await handshake(node.url, await idpToken(await makeKey("c", "RS256"))), "UNAUTHORIZED");
    await eventually(async () => (await fetch(`${node.url}/healthz`)).status === 200, 5000, "serving");
  });
});
