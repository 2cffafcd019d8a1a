/**
 * The one way the workspace mints a development/test token (CONTRACT.md §1): an HS256 JWT whose
 * `sub` is the user id, with `iat` and `exp`. The node's `pnpm token` CLI, the test kit and the
 * load runner all call this; k6 keeps its own JavaScript (`load-tests/k6/lib/auth.js`), checked
 * against this one by a test. Node-only (node:crypto): the browser page never imports it.
 */
import { createHmac } from "node:crypto";

const b64url = (s: string) => Buffer.from(s).toString("base64url");

/** Claims a deployment may require besides `sub`, `iat` and `exp` (JWT_ISSUER, JWT_AUDIENCE). */
export interface TokenClaims {
  iss?: string | undefined;
  aud?: string | undefined;
}

/** An HS256 token for `sub`, signed with `secret`, valid for `ttlSec` seconds (negative: already expired). */
export function mintHs256Token(sub: string, secret: string, ttlSec: number, now: number = Math.floor(Date.now() / 1000), claims: TokenClaims = {}): string {
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(
    JSON.stringify({ sub, iat: now, exp: now + ttlSec, ...(claims.iss !== undefined ? { iss: claims.iss } : {}), ...(claims.aud !== undefined ? { aud: claims.aud } : {}) }),
  );
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}
