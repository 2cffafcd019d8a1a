/**
 * Request ids: the id a request carries in `X-Request-Id` (set by nginx from its `$request_id`,
 * infra/nginx/chat-common.conf; by ingress-nginx from its `$req_id`; by the client when it talks to
 * a node directly) becomes Fastify's request id,
 * so it is the `reqId` of every log line about that request, and it is returned on every answer,
 * errors included, so that a user's failed request can be found in the logs.
 *
 * The header is input from outside: an id longer than REQUEST_ID_MAX_LENGTH or holding anything but
 * `[A-Za-z0-9._:-]` (a newline forging a log line, markup, a megabyte) is replaced by a generated one.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { FastifyInstance } from "fastify";

export const REQUEST_ID_HEADER = "x-request-id";
export const REQUEST_ID_MAX_LENGTH = 128;
const SAFE_ID = new RegExp(`^[A-Za-z0-9._:-]{1,${REQUEST_ID_MAX_LENGTH}}$`);

/** The request's own id when it is safe to log and echo; a fresh one otherwise. */
export function requestIdOf(headers: IncomingMessage["headers"]): string {
  const given = headers[REQUEST_ID_HEADER];
  return typeof given === "string" && SAFE_ID.test(given) ? given : randomUUID();
}

/** Fastify's `genReqId`, with `requestIdHeader: false` so that Fastify never takes the header unchecked. */
export function genReqId(req: IncomingMessage): string {
  return requestIdOf(req.headers);
}

/** Returns the request id on every Fastify answer, the error handler's and the not-found handler's included. */
export function installRequestIds(app: FastifyInstance): void {
  app.addHook("onSend", async (req, reply) => {
    reply.header(REQUEST_ID_HEADER, req.id);
  });
}

/** Engine.IO's own answers (`/socket.io/`, which never reach Fastify) carry the request's id too. */
export function installEngineRequestIds(engine: { on(event: "headers", listener: (headers: Record<string, string>, req: IncomingMessage) => void): unknown }): void {
  engine.on("headers", (headers, req) => {
    headers[REQUEST_ID_HEADER] = requestIdOf(req.headers);
  });
}

/** Fastify's `frameworkErrors` bypass every hook: `handler` wrapped so that its answers carry the id too. */
export function withRequestId<Args extends [unknown, { id: string }, { header(name: string, value: string): unknown }]>(
  handler: (...args: Args) => void,
): (...args: Args) => void {
  return (...args) => {
    args[2].header(REQUEST_ID_HEADER, args[1].id);
    handler(...args);
  };
}
