/**
 * `pnpm token <userId> [ttlSeconds]`: prints an HS256 token for the user, signed with JWT_SECRET
 * (the development secret when unset, as the node uses), for curl, k6 and the demo page.
 */
import { Id, compileValidator } from "@chat/protocol";
import { ConfigError, loadConfig } from "../config.ts";
import { mintHs256Token } from "@chat/protocol/token";

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
  const config = loadConfig();
  console.log(mintHs256Token(userId, config.jwtSecret, ttlSec));
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`configuration error: ${err.message}`);
    process.exit(78);
  }
  throw err;
}
