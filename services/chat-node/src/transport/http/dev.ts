/**
 * Development sign-in for the demo page: `POST /dev/token {"userId"}` → `{ token }`. Registered only
 * when DEV_TOKENS is on, which config refuses together with NODE_ENV=production.
 */
import type { FastifyInstance } from "fastify";
import { Type } from "@sinclair/typebox";
import { Id, compileValidator } from "@chat/protocol";
import { valid } from "../../errors.ts";
import type { Authenticator } from "../../auth.ts";

const body = compileValidator(Type.Object({ userId: Id }, { additionalProperties: false }));

export async function devRoutes(app: FastifyInstance, d: { auth: Authenticator }): Promise<void> {
  app.post("/dev/token", async (req) => {
    const { userId } = valid(body(req.body));
    return { token: await d.auth.sign(userId), userId };
  });
}
