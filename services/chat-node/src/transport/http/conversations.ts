/** The contract's REST section 2, thin: authenticate, rate-limit, parse, call the core, answer. */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { ConversationsQuery, CreateConversationBody, HistoryQuery, PostMessageBody, compileValidator } from "@chat/protocol";
import { invalid, valid } from "../../errors.ts";
import type { Authenticator } from "../../auth.ts";
import { bearerToken } from "../../auth.ts";
import type { RateLimiter } from "../../rate-limit.ts";
import type { ChatCore } from "../../core/chat-core.ts";
import { wallNow } from "../../core/ports.ts";
import { Id, type ServerLimits } from "@chat/protocol";

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

export async function conversationRoutes(app: FastifyInstance, d: ConversationRoutesDeps): Promise<void> {
  app.decorateRequest("userId", "");
  app.addHook("onRequest", async (req) => {
    req.userId = await d.auth.verify(bearerToken(req.headers.authorization));
  });

  app.post("/conversations", async (req, reply) => {
    d.limiter.check("rest_write", req.userId);
    const body = valid(v.create(req.body));
    return reply.status(201).send(await d.core.createConversation(req.userId, body));
  });

  app.get("/conversations", async (req) => {
    d.limiter.check("rest_read", req.userId);
    const q = valid(v.conversations(req.query ?? {}));
    return { conversations: await d.core.listConversations(req.userId, q.limit === undefined ? undefined : Number(q.limit)) };
  });

  app.get("/conversations/:id", async (req) => {
    d.limiter.check("rest_read", req.userId);
    return d.core.getConversation(req.userId, conversationId(req));
  });

  app.get("/conversations/:id/messages", async (req) => {
    d.limiter.check("rest_read", req.userId);
    const id = conversationId(req);
    const q = valid(v.history(req.query ?? {}));
    const num = (s: string | undefined) => (s === undefined ? undefined : Number(s));
    return d.core.history(req.userId, id, { limit: num(q.limit), before: num(q.before), after: num(q.after) });
  });

  app.post("/conversations/:id/messages", async (req, reply) => {
    const receivedAt = wallNow();
    d.limiter.check("rest_write", req.userId);
    const id = conversationId(req);
    const body = valid(v.post(req.body));
    const { message, duplicate } = await d.core.send(req.userId, { ...body, conversationId: id }, undefined, receivedAt);
    return reply.status(duplicate ? 200 : 201).send(message);
  });

  app.get("/limits", async (req) => {
    d.limiter.check("rest_read", req.userId);
    return d.limits;
  });

  app.get("/conversations/:id/presence", async (req) => {
    d.limiter.check("rest_read", req.userId);
    return d.core.presence(req.userId, conversationId(req));
  });
}
