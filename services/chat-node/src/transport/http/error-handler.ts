/**
 * Every REST failure as the contract's `{ error: { code, message } }`: our AppErrors, and
 * Fastify's own (malformed JSON, prototype poisoning, wrong content type, body over the limit).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ErrorCode } from "@chat/protocol";
import { AppError, toAppError, toHttp } from "../../errors.ts";
import type { Metrics } from "../../metrics.ts";
import { bearerToken } from "../../auth.ts";

/** Which origins may read REST answers, and the headers they may read (the CORS plugin's settings). */
export interface CorsPolicy {
  allows(origin: string | undefined): boolean;
  exposedHeaders: string[];
}

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
    // RFC 6750: a 401 names the scheme, and says when the bearer token given was the problem
    // (another scheme, e.g. Basic, gets the scheme alone).
    if (e.code === ErrorCode.UNAUTHORIZED) {
      void reply.header("www-authenticate", bearerToken(request.headers.authorization) !== undefined ? 'Bearer error="invalid_token"' : "Bearer");
    }
    return reply.status(status).send(body);
  });
  app.setNotFoundHandler((_request, reply) => {
    metrics.errors.inc({ code: ErrorCode.NOT_FOUND });
    return reply.status(404).send({ error: { code: ErrorCode.NOT_FOUND, message: "no such route" } });
  });
}

/**
 * Fastify's `frameworkErrors` option: the router's own refusals (a URL that does not percent-decode,
 * a path parameter over `maxParamLength`) bypass the error handler and would answer Fastify's
 * `{ error: "Bad Request", code: "FST_ERR_BAD_URL", ... }` shape. They bypass every hook too, the
 * CORS plugin's among them, so an allowed origin's headers are set here.
 */
export function frameworkErrors(metrics: Metrics, cors: CorsPolicy) {
  return (err: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    metrics.errors.inc({ code: ErrorCode.INVALID_PAYLOAD });
    const origin = request.headers.origin;
    void reply.header("vary", "Origin"); // as the plugin sends it, allowed origin or not
    if (cors.allows(origin)) {
      void reply.headers({
        "access-control-allow-origin": origin,
        "access-control-allow-credentials": "true",
        "access-control-expose-headers": cors.exposedHeaders.join(", "),
      });
    }
    const message = err.code === "FST_ERR_MAX_PARAM_LENGTH" ? "a path parameter is too long" : "the URL is not valid percent-encoded UTF-8";
    void reply.status(400).send({ error: { code: ErrorCode.INVALID_PAYLOAD, message } });
  };
}
