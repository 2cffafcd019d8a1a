import { createHmac } from "node:crypto";

const b64url = (s: string | Buffer) => Buffer.from(s).toString("base64url");

/**
 * An HS256 JWT for `sub`, as the chat node verifies it (CONTRACT.md §1). A node closes a socket's
 * transport when its token expires: the default lifetime (24 h) outlasts any run.
 */
export function mintToken(sub: string, secret: string, ttlSec = 24 * 3600): string {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify({ sub, iat: now, exp: now + ttlSec }));
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}
