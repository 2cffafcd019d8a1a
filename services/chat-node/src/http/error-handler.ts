/**
 * Every REST failure as the contract's `{ error: { code, message } }`: our AppErrors, and
 * Fastify's own (malformed JSON, prototype poisoning, wrong content type, body over the limit).
 */
import type { FastifyError, FastifyInstance } from "fastify";
import { ErrorCode } from "@chat/protocol";
import { AppError, toAppError, toHttp } from "../errors.ts";
import type { Metrics } from "../metrics.ts";

function fromFastify(err: FastifyError): AppError | undefined {
  if (err instanceof AppError) return err;
  const status = err.statusCode;
  if (status === 413) return new AppError(ErrorCode.PAYLOAD_TOO_LARGE, "request body too large", { cause: err });
  if (status === 415 || status === 400 || status === 414) return new AppError(ErrorCode.INVALID_PAYLOAD, status === 415 ? "body must be application/json" : "malformed request body", { cause: err });
  if (status === 404) return new AppError(ErrorCode.NOT_FOUND, "not found", { cause: err });
  return undefined;
}

export function installErrorHandling(app: FastifyInstance, metrics: Metrics): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const e = fromFastify(err) ?? toAppError(err);
    metrics.errors.inc({ code: e.code });
    if (e.code === ErrorCode.INTERNAL || e.code === ErrorCode.UNAVAILABLE) request.log.warn({ err: e.cause ?? e }, "request failed");
    const { status, body } = toHttp(e);
    if (e.retryAfter !== undefined) void reply.header("retry-after", String(e.retryAfter));
    return reply.status(status).send(body);
  });
  app.setNotFoundHandler((_request, reply) => {
    metrics.errors.inc({ code: ErrorCode.NOT_FOUND });
    return reply.status(404).send({ error: { code: ErrorCode.NOT_FOUND, message: "no such route" } });
  });
}
