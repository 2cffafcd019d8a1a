/**
 * HS256 JWTs: `sub` is the user id (1-128 characters), `exp` is honoured. Anything else
 * (no token, garbage, another algorithm, `alg: none`, a wrong signature, expired) is UNAUTHORIZED.
 */
import { createSecretKey } from "node:crypto";
import { SignJWT, jwtVerify } from "jose";
import { ErrorCode, Limits } from "@chat/protocol";
import { AppError } from "./errors.ts";

export interface Authenticator {
  /** The user id of a valid token; throws AppError(UNAUTHORIZED) otherwise. */
  verify(token: unknown): Promise<string>;
  /** Mints a token for `userId`, valid for `ttlSec`. */
  sign(userId: string, ttlSec?: number): Promise<string>;
}

export function createAuthenticator(secret: string): Authenticator {
  // One KeyObject for the node's life: jose would otherwise import raw key bytes at every handshake.
  const key = createSecretKey(Buffer.from(secret, "utf8"));
  const unauthorized = (message: string, cause?: unknown) => new AppError(ErrorCode.UNAUTHORIZED, message, { cause });
  return {
    async verify(token) {
      if (typeof token !== "string" || token.length === 0) throw unauthorized("missing token");
      if (token.length > 4096) throw unauthorized("token too long");
      let sub: unknown;
      try {
        const { payload } = await jwtVerify(token, key, { algorithms: ["HS256"], requiredClaims: ["sub", "exp"] });
        sub = payload.sub;
      } catch (err) {
        throw unauthorized("invalid or expired token", err);
      }
      if (typeof sub !== "string" || sub.length < 1 || sub.length > Limits.idMaxLength) throw unauthorized("invalid subject");
      return sub;
    },
    async sign(userId, ttlSec = 24 * 3600) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({}).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setSubject(userId).setIssuedAt(now).setExpirationTime(now + ttlSec).sign(key);
    },
  };
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}
