/**
 * Tokens for the load runner: the workspace's one minter (`@chat/protocol/token`). A node closes a
 * socket's transport when its token expires: the default lifetime (24 h) outlasts any run.
 */
import { mintHs256Token } from "@chat/protocol/token";

export function mintToken(sub: string, secret: string, ttlSec = 24 * 3600): string {
  return mintHs256Token(sub, secret, ttlSec);
}
