/**
 * Development sign-in for the demo page: `POST /dev/token {"userId"}` → `{ token }`. Registered only
 * when DEV_TOKENS is on, which config refuses together with NODE_ENV=production.
 */
import type { FastifyInstance } from "fastify";
import { Type } from "@sinclair/typebox";
import { Id, compileValidator } from "@chat/protocol";
import { invalid } from "../errors.ts";
import type { Authenticator } from "../auth.ts";

const body = compileValidator(Type.Object({ userId: Id }, { additionalProperties: false }));

export async function devRoutes(app: FastifyInstance, d: { auth: Authenticator }): Promise<void> {
  app.post("/dev/token", async (req) => {
    const r = body(req.body);
    if (!r.ok) throw invalid(r.reason);
    return { token: await d.auth.sign(r.value.userId), userId: r.value.userId };
  });
}
