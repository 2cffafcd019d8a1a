/**
 * k6 mints its tokens in JavaScript (load-tests/k6/lib/auth.js, with k6/crypto), apart from the
 * node's signer (jose). Both are held to the same vectors: for a fixed sub, secret, iat and
 * lifetime, k6's token is byte for byte the one jose's SignJWT makes as the node signs, and the
 * one the workspace's shared minter (`@chat/protocol/token`) makes
 * (header {alg, typ}, claims sub, iat, exp), jose verifies it as the node does, and a real node
 * accepts a fresh one and refuses one signed with another secret.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { SignJWT, jwtVerify } from "jose";
import { api, startNode, stopAll, TEST_SECRET, type NodeHandle } from "@chat/test-kit";
import type { Conversation } from "@chat/protocol";
import { mintHs256Token } from "@chat/protocol/token";

const FIXTURE = path.join(import.meta.dirname, "fixtures/mint-with-k6-auth.ts");

interface Vector {
  sub: string;
  secret: string;
  iat: number;
  ttl: number;
}

const VECTORS: Vector[] = [
  { sub: "alice", secret: TEST_SECRET, iat: 1_700_000_000, ttl: 3600 },
  { sub: "k6-1796600000000-u42", secret: "0123456789abcdef0123456789abcdef", iat: 1_800_000_000, ttl: 86_400 },
  // Non-ASCII in both: k6 and jose must both sign UTF-8 bytes.
  { sub: "ünïcødé-用户-🙂", secret: "sécret-ключ-秘密-0123456789", iat: 1_750_000_123, ttl: 60 },
  { sub: "x".repeat(128), secret: "s".repeat(64), iat: 1, ttl: 1 },
];

function k6Mint(vectors: Vector[]): string[] {
  const r = spawnSync(process.execPath, ["--experimental-vm-modules", "--no-warnings", FIXTURE, "--vectors", JSON.stringify(vectors)], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

const key = (secret: string) => new TextEncoder().encode(secret);

let node: NodeHandle;
before(async () => {
  node = await startNode({ RATE_LIMIT_DISABLED: "1" });
});
after(() => stopAll());

test("k6's tokens are byte for byte jose's for the same claims, and jose verifies them", async () => {
  const tokens = k6Mint(VECTORS);
  assert.equal(tokens.length, VECTORS.length);
  for (const [i, v] of VECTORS.entries()) {
    const expected = await new SignJWT({}).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setSubject(v.sub).setIssuedAt(v.iat).setExpirationTime(v.iat + v.ttl).sign(key(v.secret));
    assert.equal(tokens[i], expected, `vector ${i} (${v.sub.slice(0, 20)})`);
    const { payload, protectedHeader } = await jwtVerify(tokens[i]!, key(v.secret), { algorithms: ["HS256"], currentDate: new Date((v.iat + v.ttl / 2) * 1000) });
    assert.deepEqual(protectedHeader, { alg: "HS256", typ: "JWT" });
    assert.deepEqual(payload, { sub: v.sub, iat: v.iat, exp: v.iat + v.ttl });
    await assert.rejects(jwtVerify(tokens[i]!, key(v.secret + "x"), { algorithms: ["HS256"], currentDate: new Date(v.iat * 1000) }), /signature/);
  }
});

test("k6's tokens are byte for byte the workspace's own minter's (@chat/protocol/token: the CLI, test kit and load runner)", () => {
  const tokens = k6Mint(VECTORS);
  for (const [i, v] of VECTORS.entries()) assert.equal(tokens[i], mintHs256Token(v.sub, v.secret, v.ttl, v.iat), `vector ${i} (${v.sub.slice(0, 20)})`);
});

test("a real node accepts a token k6 mints now with its secret, and refuses one with another", async () => {
  const now = Math.floor(Date.now() / 1000);
  const [good, wrong] = k6Mint([
    { sub: "k6-ünï", secret: TEST_SECRET, iat: now, ttl: 600 },
    { sub: "k6-ünï", secret: TEST_SECRET + "-other", iat: now, ttl: 600 },
  ]);
  const res = await api(node.url, good).post<Conversation>("/conversations", { members: ["k6-ünï"] });
  assert.equal(res.status, 201);
  assert.deepEqual(res.body.members, ["k6-ünï"]);
  const refused = await api(node.url, wrong).post<Conversation>("/conversations", { members: ["k6-ünï"] });
  assert.equal(refused.status, 401);
  const [expired] = k6Mint([{ sub: "k6-late", secret: TEST_SECRET, iat: now - 120, ttl: 60 }]);
  assert.equal((await api(node.url, expired).get("/conversations")).status, 401, "exp is honoured");
});
