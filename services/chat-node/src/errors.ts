/**
 * One error type for the whole node, carrying a contract code, and the two mappings: to a REST
 * reply and to an acknowledgement. Clients only ever see the code and a safe message; the original
 * error stays as `cause` for the logs.
 */
import { ErrorCode, httpStatusOf, type AckError, type ErrorBody, type Validated } from "@chat/protocol";
import { StoreUnavailableError } from "./store/types.ts";

export class AppError extends Error {
  override name = "AppError";
  readonly code: ErrorCode;
  readonly retryAfter: number | undefined;
  constructor(code: ErrorCode, message: string, opts: { cause?: unknown; retryAfter?: number } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.retryAfter = opts.retryAfter;
  }
}

export const invalid = (message: string) => new AppError(ErrorCode.INVALID_PAYLOAD, message);
/** The validated value, or INVALID_PAYLOAD naming the first failing path. */
export function valid<T>(result: Validated<T>): T {
  if (!result.ok) throw invalid(result.reason);
  return result.value;
}

export const forbidden = (message = "not allowed") => new AppError(ErrorCode.FORBIDDEN, message);
export const notFound = (message = "not found") => new AppError(ErrorCode.NOT_FOUND, message);

/** Any thrown value as an AppError: store outages become UNAVAILABLE, the rest INTERNAL. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof StoreUnavailableError) return new AppError(ErrorCode.UNAVAILABLE, "the message store is unavailable", { cause: err });
  return new AppError(ErrorCode.INTERNAL, "internal error", { cause: err });
}

export function errorBody(err: AppError): ErrorBody {
  const body: ErrorBody = { code: err.code, message: err.message };
  if (err.retryAfter !== undefined) body.retryAfter = err.retryAfter;
  return body;
}

/** The acknowledgement of a failed event. */
export function toAck(err: AppError): AckError {
  return { ok: false, error: errorBody(err) };
}

/** The REST status and body of a failed request. */
export function toHttp(err: AppError): { status: number; body: { error: ErrorBody } } {
  return { status: httpStatusOf[err.code], body: { error: errorBody(err) } };
}
