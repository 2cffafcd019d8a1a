/**
 * HS256 JWTs: `sub` is the user id (1-128 characters of well-formed UTF-16), `exp` is honoured when
 * present (a token without one does not expire: the contract asks for `sub` only, and common JWT
 * libraries mint tokens without `exp` unless told to). Anything else (no token, garbage, another
 * algorithm, `alg: none`, a wrong signature, expired, not yet valid) is UNAUTHORIZED.
 */
import { createSecretKey } from "node:crypto";
import { SignJWT, jwtVerify } from "jose";
import { ErrorCode, Limits } from "@chat/protocol";
import { AppError } from "./errors.ts";

/** What a valid token says. */
export interface Identity {
  userId: string;
  /** When the token expires (ms since the epoch), if it does. */
  expiresAt?: number;
}

export interface Authenticator {
  /** The user id of a valid token; throws AppError(UNAUTHORIZED) otherwise. */
  verify(token: unknown): Promise<string>;
  /** The user id and expiry of a valid token; throws AppError(UNAUTHORIZED) otherwise. */
  identify(token: unknown): Promise<Identity>;
  /** Mints a token for `userId`, valid for `ttlSec`. */
  sign(userId: string, ttlSec?: number): Promise<string>;
}

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export function createAuthenticator(secret: string): Authenticator {
  // One KeyObject for the node's life: jose would otherwise import raw key bytes at every handshake.
  const key = createSecretKey(Buffer.from(secret, "utf8"));
  const unauthorized = (message: string, cause?: unknown) => new AppError(ErrorCode.UNAUTHORIZED, message, { cause });
  async function identify(token: unknown): Promise<Identity> {
    if (typeof token !== "string" || token.length === 0) throw unauthorized("missing token");
    if (token.length > 4096) throw unauthorized("token too long");
    // Compact JWS is three base64url parts without padding (RFC 7515); Node's decoder would also
    // take `=` padding or other stray characters and still check the signature over the rest.
    if (!COMPACT_JWS.test(token)) throw unauthorized("malformed token");
    let sub: unknown;
    let exp: unknown;
    try {
      const { payload } = await jwtVerify(token, key, { algorithms: ["HS256"], requiredClaims: ["sub"] });
      sub = payload.sub;
      exp = payload.exp;
    } catch (err) {
      throw unauthorized("invalid or expired token", err);
    }
    if (typeof sub !== "string" || sub.length < 1 || sub.length > Limits.idMaxLength || !sub.isWellFormed()) throw unauthorized("invalid subject");
    return typeof exp === "number" ? { userId: sub, expiresAt: exp * 1000 } : { userId: sub };
  }
  return {
    identify,
    async verify(token) {
      return (await identify(token)).userId;
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
