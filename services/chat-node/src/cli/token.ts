/**
 * `pnpm token <userId> [ttlSeconds]`: prints an HS256 token for the user, signed with JWT_SECRET,
 * for curl, k6 and the demo page. Without JWT_SECRET it signs with the published development
 * secret, which only a node started with DEV_INSECURE_TOKENS=1 (./scripts/start.sh's demo) accepts.
 */
import { Id, compileValidator } from "@chat/protocol";
import { ConfigError, loadSigningConfig } from "../config.ts";
import { createAuthenticator } from "../auth.ts";

const [userId, ttl] = process.argv.slice(2);
const check = compileValidator(Id);
if (!userId || !check(userId).ok) {
  console.error("usage: pnpm token <userId 1-128 characters> [ttlSeconds]");
  process.exit(2);
}
const ttlSec = ttl === undefined ? 24 * 3600 : Number(ttl);
if (!Number.isInteger(ttlSec) || ttlSec <= 0) {
  console.error("ttlSeconds must be a positive integer");
  process.exit(2);
}
try {
  // JWT_SECRET, JWT_ISSUER and JWT_AUDIENCE as a node reads them, so that the node accepts the token.
  const { jwt, demo } = loadSigningConfig();
  if (demo) console.error("JWT_SECRET is not set: signing with the published development secret (only a node with DEV_INSECURE_TOKENS=1 accepts it)");
  console.log(await createAuthenticator(jwt).sign(userId, ttlSec));
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`configuration error: ${err.message}`);
    process.exit(78);
  }
  throw err;
}
