/**
 * Bearer JWTs, as deployments issue them: HS256 with a shared secret (JWT_SECRET), RS256/ES256
 * from an identity provider, verified against a public key file or a JWKS URL. `sub` is the user id
 * (1-128 characters of well-formed UTF-16); `exp` and `nbf` are honoured (with
 * JWT_CLOCK_TOLERANCE_S), `iss` and `aud` checked when configured. A token without `exp` does not
 * expire: the contract asks for `sub` only.
 *
 * Each algorithm has its own key: HS256 is verified with the secret only, RS256/ES256 with public
 * keys only, so an HS256 token "signed" with the published public key (algorithm confusion) fails,
 * and `alg: none` or any algorithm not in JWT_ALGORITHMS is refused before a key is looked up (an
 * unknown `kid` under a refused algorithm fetches nothing). Anything invalid is UNAUTHORIZED; an
 * identity provider that cannot be reached is UNAVAILABLE, which is not the client's fault.
 */
import { createSecretKey, type KeyObject } from "node:crypto";
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey, type JWTVerifyOptions } from "jose";
import { ErrorCode, Limits } from "@chat/protocol";
import { mintHs256Token } from "@chat/protocol/token";
import type { JwtSettings } from "./config.ts";
import { AppError } from "./errors.ts";

/** What a valid token says. */
export interface Identity {
  userId: string;
  /** When the token stops being accepted (ms since the epoch: `exp` plus the clock tolerance), if it does. */
  expiresAt?: number;
}

export interface Authenticator {
  /** The user id of a valid token; throws AppError(UNAUTHORIZED), or UNAVAILABLE when the keys cannot be fetched. */
  verify(token: unknown): Promise<string>;
  /** The user id and expiry of a valid token; throws as `verify` does. */
  identify(token: unknown): Promise<Identity>;
  /** Mints an HS256 token for `userId`, valid for `ttlSec`; throws when the node has no JWT_SECRET. */
  sign(userId: string, ttlSec?: number): Promise<string>;
}

/** The token settings auth needs; a plain string is an HS256 secret (what callers passed before). */
export type AuthSettings = string | Pick<JwtSettings, "algorithms" | "secret"> & Partial<JwtSettings>;

export interface AuthHooks {
  /** Called when the JWKS URL cannot be fetched or parsed (log it; it is not the client's fault). */
  onKeyFetchError?(err: unknown): void;
}

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

const unauthorized = (message: string, cause?: unknown) => new AppError(ErrorCode.UNAUTHORIZED, message, { cause });

/** The errors that mean the identity provider's keys could not be had, rather than a bad token. */
function isKeyFetchFailure(err: unknown): boolean {
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return true;
  if (err instanceof errors.JOSEError) return err.code === "ERR_JOSE_GENERIC" && /JSON Web Key Set/.test(err.message);
  // fetch's own failures (connection refused, reset, DNS) are undici's TypeError("fetch failed").
  return err instanceof TypeError && err.message === "fetch failed";
}

/**
 * Public keys from a JWKS URL: jose caches them (JWT_JWKS_CACHE_MAX_AGE_MS), fetches again when a
 * token names an unknown `kid` (at most once per JWT_JWKS_COOLDOWN_MS), and gives up on a fetch
 * after JWT_JWKS_TIMEOUT_MS. Two additions: while the provider cannot be reached, the last keys it
 * served keep verifying (a rotation still needs it up), and after a failed fetch none is tried again
 * for a second or the cooldown, whichever is shorter, so that a flood of handshakes during an
 * outage does not become a flood of fetches.
 */
function remoteKeys(s: Partial<JwtSettings>, hooks: AuthHooks): JWTVerifyGetKey {
  const remote = createRemoteJWKSet(new URL(s.jwksUrl!), {
    timeoutDuration: s.jwksTimeoutMs ?? 5000,
    cooldownDuration: s.jwksCooldownMs ?? 30_000,
    cacheMaxAge: s.jwksCacheMaxAgeMs ?? 600_000,
  });
  const backoffMs = Math.min(1000, s.jwksCooldownMs ?? 30_000);
  let failedAt = -Infinity;
  // The keys the provider served last, as a local set, built once per failure (not per token).
  let lastKnown: JWTVerifyGetKey | undefined;
  const unavailable = (cause?: unknown) => new AppError(ErrorCode.UNAVAILABLE, "the identity provider's keys cannot be fetched", { cause });
  return async (header, token) => {
    if (performance.now() - failedAt < backoffMs) {
      if (lastKnown) return lastKnown(header, token);
      throw unavailable();
    }
    try {
      return await remote(header, token);
    } catch (err) {
      if (!isKeyFetchFailure(err)) throw err;
      failedAt = performance.now();
      hooks.onKeyFetchError?.(err);
      const known = remote.jwks();
      lastKnown = known ? createLocalJWKSet(known) : undefined;
      if (lastKnown) return lastKnown(header, token);
      throw unavailable(err);
    }
  };
}

export function createAuthenticator(settings: AuthSettings, hooks: AuthHooks = {}): Authenticator {
  const s: Pick<JwtSettings, "algorithms" | "secret"> & Partial<JwtSettings> = typeof settings === "string" ? { algorithms: ["HS256"], secret: settings } : settings;
  // One KeyObject for the node's life: jose would otherwise import raw key bytes at every handshake.
  const secretKey: KeyObject | undefined = s.secret ? createSecretKey(Buffer.from(s.secret, "utf8")) : undefined;
  const publicKeys: JWTVerifyGetKey | KeyObject | undefined = s.publicKey ?? (s.localJwks ? createLocalJWKSet(s.localJwks as JSONWebKeySet) : s.jwksUrl ? remoteKeys(s, hooks) : undefined);
  const getKey: JWTVerifyGetKey = async (header, token) => {
    // The algorithm (already one of `algorithms`, checked by jose first) picks the kind of key.
    if (header.alg === "HS256") {
      if (!secretKey) throw unauthorized("HS256 is not accepted");
      return secretKey;
    }
    if (!publicKeys) throw unauthorized(`${header.alg} is not accepted`);
    return typeof publicKeys === "function" ? publicKeys(header, token) : publicKeys;
  };
  const options: JWTVerifyOptions = {
    algorithms: [...s.algorithms],
    requiredClaims: ["sub"],
    clockTolerance: s.clockToleranceSec ?? 0,
    ...(s.issuer ? { issuer: [...s.issuer] } : {}),
    ...(s.audience ? { audience: [...s.audience] } : {}),
  };
  const toleranceMs = (s.clockToleranceSec ?? 0) * 1000;

  async function identify(token: unknown): Promise<Identity> {
    if (typeof token !== "string" || token.length === 0) throw unauthorized("missing token");
    if (token.length > 8192) throw unauthorized("token too long");
    // Compact JWS is three base64url parts without padding (RFC 7515); Node's decoder would also
    // take `=` padding or other stray characters and still check the signature over the rest.
    if (!COMPACT_JWS.test(token)) throw unauthorized("malformed token");
    let sub: unknown;
    let exp: unknown;
    try {
      const { payload } = await jwtVerify(token, getKey, options);
      sub = payload.sub;
      exp = payload.exp;
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw unauthorized("invalid or expired token", err);
    }
    if (typeof sub !== "string" || sub.length < 1 || sub.length > Limits.idMaxLength || !sub.isWellFormed()) throw unauthorized("invalid subject");
    return typeof exp === "number" ? { userId: sub, expiresAt: exp * 1000 + toleranceMs } : { userId: sub };
  }
  return {
    identify,
    async verify(token) {
      return (await identify(token)).userId;
    },
    async sign(userId, ttlSec = 24 * 3600) {
      if (!s.secret) throw new AppError(ErrorCode.INTERNAL, "this node has no JWT_SECRET to sign with");
      // The workspace's one minter; with JWT_ISSUER / JWT_AUDIENCE so that the node accepts what it mints.
      return mintHs256Token(userId, s.secret, ttlSec, undefined, { iss: s.issuer?.[0], aud: s.audience?.[0] });
    },
  };
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}
