import type { ErrorBody, ErrorCode } from "@chat/protocol";

/** What went wrong: one of the contract's codes, or a transport failure seen only by the client. */
export type ChatErrorCode = ErrorCode | "NETWORK" | "TIMEOUT";

/**
 * An error the SDK reports: a refusal by the server (the contract's code and safe message, plus the
 * HTTP status on REST) or a transport failure (`NETWORK`, `TIMEOUT`).
 */
export class ChatError extends Error {
  override name = "ChatError";
  readonly code: ChatErrorCode;
  readonly status: number | undefined;
  /** Seconds to wait before trying again, when the server said so (RATE_LIMITED). */
  readonly retryAfter: number | undefined;

  constructor(code: ChatErrorCode, message: string, opts: { status?: number; retryAfter?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.status = opts.status;
    this.retryAfter = opts.retryAfter;
  }

  /** True when the same request may succeed later: transport failures, overload, rate limits. */
  get retryable(): boolean {
    return RETRYABLE.has(this.code);
  }

  static fromBody(body: ErrorBody | undefined, status?: number): ChatError {
    return new ChatError(body?.code ?? "INTERNAL", body?.message ?? `request failed${status ? ` with ${status}` : ""}`, {
      status,
      retryAfter: body?.retryAfter,
    });
  }
}

const RETRYABLE: ReadonlySet<ChatErrorCode> = new Set<ChatErrorCode>(["NETWORK", "TIMEOUT", "UNAVAILABLE", "RATE_LIMITED", "INTERNAL"]);
