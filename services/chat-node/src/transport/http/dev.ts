/**
 * Development sign-in for the demo page: `POST /dev/token {"userId"}` → `{ token }`. Registered only
 * with DEV_INSECURE_TOKENS=1, which config refuses together with NODE_ENV=production. Rate-limited
 * per client address (the `token` scope): the caller has no identity yet.
 */
import type { FastifyInstance } from "fastify";
import { Type } from "@sinclair/typebox";
import { Id, compileValidator } from "@chat/protocol";
import { valid } from "../../errors.ts";
import { documentationOnly, errorResponses } from "./openapi.ts";
import type { Authenticator } from "../../auth.ts";
import type { RateLimiter } from "../../rate-limit.ts";

const Body = Type.Object({ userId: Id }, { additionalProperties: false });
const body = compileValidator(Body);
const schema = {
  tags: ["development"],
  summary: "A token for any user id (DEV_INSECURE_TOKENS=1 only; never in production)",
  body: Body,
  response: { 200: Type.Object({ token: Type.String(), userId: Id }), ...errorResponses(400) },
};

export async function devRoutes(app: FastifyInstance, d: { auth: Authenticator; limiter: RateLimiter }): Promise<void> {
  documentationOnly(app);
  app.post("/dev/token", { schema }, async (req) => {
    d.limiter.check("token", `ip:${req.ip}`);
    const { userId } = valid(body(req.body));
    return { token: await d.auth.sign(userId), userId };
  });
}
