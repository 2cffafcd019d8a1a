/**
 * HS256 tokens for the chat node, minted inside k6 from the cluster's JWT_SECRET: header
 * {"alg":"HS256","typ":"JWT"}, claims {"sub","iat","exp"} in that order, which is byte for byte
 * what the node's own signer (jose's SignJWT, `pnpm token <userId>`) produces for the same
 * claims; load-tests/runner/test/k6-auth.test.ts holds both to the same vectors.
 * A node closes a socket's transport when its token expires, so the default lifetime (24 h) outlasts
 * any scenario here, the soak included; pass `ttlSec` to test expiry itself.
 */
import crypto from "k6/crypto";
import encoding from "k6/encoding";

/** `nowSec` (seconds since the epoch) fixes `iat` for the test vectors; the clock otherwise. */
export function mintToken(sub, secret, ttlSec, nowSec) {
  const now = nowSec === undefined ? Math.floor(Date.now() / 1000) : nowSec;
  const head = encoding.b64encode(JSON.stringify({ alg: "HS256", typ: "JWT" }), "rawurl");
  const body = encoding.b64encode(JSON.stringify({ sub: sub, iat: now, exp: now + (ttlSec || 24 * 3600) }), "rawurl");
  const sig = crypto.hmac("sha256", secret, head + "." + body, "base64rawurl");
  return head + "." + body + "." + sig;
}

/** The secret from the environment, or a clear failure. */
export function secretFromEnv(env) {
  const s = env.JWT_SECRET;
  if (!s) throw new Error("set JWT_SECRET (the cluster's secret) so that k6 can mint tokens: k6 run -e JWT_SECRET=... script.js");
  return s;
}
