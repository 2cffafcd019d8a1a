/** The contract's REST section 2, thin: authenticate, rate-limit, parse, call the core, answer. */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { ConversationsQuery, CreateConversationBody, HistoryQuery, PostMessageBody, compileValidator } from "@chat/protocol";
import { invalid, valid } from "../../errors.ts";
import type { Authenticator } from "../../auth.ts";
import { bearerToken } from "../../auth.ts";
import type { RateLimiter } from "../../rate-limit.ts";
import type { ChatCore } from "../../core/chat-core.ts";
import { wallNow } from "../../core/ports.ts";
import {
  ConversationSchema,
  Id,
  MessageDataSchema,
  MessagePageSchema,
  ServerLimitsSchema,
  type ServerLimits,
} from "@chat/protocol";
import { Type } from "@sinclair/typebox";
import { documentationOnly, errorResponses } from "./openapi.ts";

const v = {
  create: compileValidator(CreateConversationBody),
  post: compileValidator(PostMessageBody),
  history: compileValidator(HistoryQuery),
  conversations: compileValidator(ConversationsQuery),
  id: compileValidator(Id),
};

declare module "fastify" {
  interface FastifyRequest {
    userId: string;
  }
}

export interface ConversationRoutesDeps {
  core: ChatCore;
  auth: Authenticator;
  limiter: RateLimiter;
  /** Answered by `GET /limits`. */
  limits: ServerLimits;
}

/** The `:id` of the path; refused as INVALID_PAYLOAD naming the path, not a payload. */
const conversationId = (req: FastifyRequest) => {
  const r = v.id((req.params as { id?: unknown }).id);
  if (!r.ok) throw invalid(`conversation id in the path: ${r.reason.replace(/^payload:?\s*/, "")}`);
  return r.value;
};

/** What each route declares for the OpenAPI document (documentation only: see openapi.ts). */
const auth = { security: [{ bearer: [] }], tags: ["conversations"] };
const idParams = Type.Object({ id: Id });
const schemas = {
  create: { ...auth, summary: "Create a conversation; the caller is always a member", body: CreateConversationBody, response: { 201: ConversationSchema, ...errorResponses(400, 413) } },
  list: { ...auth, summary: "The caller's conversations, newest activity first", querystring: ConversationsQuery, response: { 200: Type.Object({ conversations: Type.Array(ConversationSchema) }), ...errorResponses(400) } },
  get: { ...auth, summary: "One conversation", params: idParams, response: { 200: ConversationSchema, ...errorResponses(400, 403, 404) } },
  history: {
    ...auth,
    summary: "Messages ascending by seq: the newest `limit`, or `before=` to page back, `after=` to catch up",
    params: idParams,
    querystring: HistoryQuery,
    response: { 200: MessagePageSchema, ...errorResponses(400, 403, 404) },
  },
  post: {
    ...auth,
    summary: "Send a message; broadcast as newMessage. A repeated clientMessageId answers 200 with the original",
    params: idParams,
    body: PostMessageBody,
    response: { 201: MessageDataSchema, 200: MessageDataSchema, ...errorResponses(400, 403, 404, 413) },
  },
  limits: { ...auth, tags: ["node"], summary: "What this node accepts", response: { 200: ServerLimitsSchema, ...errorResponses() } },
  presence: { ...auth, summary: "Members online in the conversation", params: idParams, response: { 200: Type.Object({ online: Type.Array(Id) }), ...errorResponses(400, 403, 404) } },
};

export async function conversationRoutes(app: FastifyInstance, d: ConversationRoutesDeps): Promise<void> {
  documentationOnly(app);
  app.decorateRequest("userId", "");
  app.addHook("onRequest", async (req) => {
    req.userId = await d.auth.verify(bearerToken(req.headers.authorization));
  });

  // Each route takes its REST bucket (rest_read / rest_write) and its operation's own, which a
  // socket event of the same kind shares (a send costs the same by socket and by REST).
  app.post("/conversations", { schema: schemas.create }, async (req, reply) => {
    d.limiter.check("rest_write", req.userId);
    d.limiter.check("conversation_create", req.userId);
    const body = valid(v.create(req.body));
    return reply.status(201).send(await d.core.createConversation(req.userId, body));
  });

  app.get("/conversations", { schema: schemas.list }, async (req) => {
    d.limiter.check("rest_read", req.userId);
    const q = valid(v.conversations(req.query ?? {}));
    return { conversations: await d.core.listConversations(req.userId, q.limit === undefined ? undefined : Number(q.limit)) };
  });

  app.get("/conversations/:id", { schema: schemas.get }, async (req) => {
    d.limiter.check("rest_read", req.userId);
    return d.core.getConversation(req.userId, conversationId(req));
  });

  app.get("/conversations/:id/messages", { schema: schemas.history }, async (req) => {
    d.limiter.check("rest_read", req.userId);
    d.limiter.check("history", req.userId);
    const id = conversationId(req);
    const q = valid(v.history(req.query ?? {}));
    const num = (s: string | undefined) => (s === undefined ? undefined : Number(s));
    return d.core.history(req.userId, id, { limit: num(q.limit), before: num(q.before), after: num(q.after) });
  });

  app.post("/conversations/:id/messages", { schema: schemas.post }, async (req, reply) => {
    const receivedAt = wallNow();
    d.limiter.check("rest_write", req.userId);
    d.limiter.check("send", req.userId);
    const id = conversationId(req);
    const body = valid(v.post(req.body));
    const { message, duplicate } = await d.core.send(req.userId, { ...body, conversationId: id }, undefined, receivedAt);
    return reply.status(duplicate ? 200 : 201).send(message);
  });

  app.get("/limits", { schema: schemas.limits }, async (req) => {
    d.limiter.check("rest_read", req.userId);
    return d.limits;
  });

  app.get("/conversations/:id/presence", { schema: schemas.presence }, async (req) => {
    d.limiter.check("rest_read", req.userId);
    d.limiter.check("presence", req.userId);
    return d.core.presence(req.userId, conversationId(req));
  });
}
