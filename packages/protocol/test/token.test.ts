/**
 * The workspace's one token minter against a fixed vector and against the verifier the node uses
 * (jose, HS256 only): the same bytes for the same inputs, accepted while valid, refused once expired
 * or with another secret.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { jwtVerify } from "jose";
import { mintHs256Token } from "@chat/protocol/token";

const SECRET = "vector-secret-0123456789";

describe("mintHs256Token", () => {
  test("a fixed vector: header, claims and signature are stable", () => {
    const token = mintHs256Token("alice", SECRET, 60, 1_700_000_000);
    const [head, body] = token.split(".");
    assert.deepEqual(JSON.parse(Buffer.from(head!, "base64url").toString()), { alg: "HS256", typ: "JWT" });
    assert.deepEqual(JSON.parse(Buffer.from(body!, "base64url").toString()), { sub: "alice", iat: 1_700_000_000, exp: 1_700_000_060 });
    assert.equal(token, mintHs256Token("alice", SECRET, 60, 1_700_000_000), "deterministic");
    assert.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/, "three unpadded base64url parts");
  });

  test("verified by jose as the node verifies it; refused when expired or signed with another secret", async () => {
    const key = new TextEncoder().encode(SECRET);
    const { payload } = await jwtVerify(mintHs256Token("bob", SECRET, 60), key, { algorithms: ["HS256"] });
    assert.equal(payload.sub, "bob");
    await assert.rejects(jwtVerify(mintHs256Token("bob", SECRET, -10), key, { algorithms: ["HS256"] }), /exp/);
    await assert.rejects(jwtVerify(mintHs256Token("bob", "another-secret-0123456789", 60), key, { algorithms: ["HS256"] }), /signature/);
  });
});
