/**
 * REST request metrics: a count by route pattern, method and status class, and a duration
 * histogram by route pattern and method. Labels are Fastify's route patterns
 * (`/conversations/:id/messages`), never the URL, and every route's series exist from start-up;
 * a request no route matched counts as `method="*", route="unmatched"`. Socket.IO's own HTTP
 * requests (`/socket.io/`) never reach Fastify and are not counted here.
 */
import type { FastifyInstance } from "fastify";
import { UNMATCHED_ROUTE, statusClassLabel, type Metrics } from "../../metrics.ts";

/** Must run before the routes are registered: `onRoute` sees only routes added after it. */
export function installRequestMetrics(app: FastifyInstance, metrics: Metrics): void {
  app.addHook("onRoute", (route) => {
    for (const method of [route.method].flat()) metrics.declareRoute(method, route.url);
  });
  app.addHook("onResponse", async (req, reply) => {
    const pattern = req.routeOptions.url;
    const { method, route } = pattern === undefined ? UNMATCHED_ROUTE : { method: req.method, route: pattern };
    metrics.httpRequests.inc({ method, route, status: statusClassLabel(reply.statusCode) });
    metrics.httpRequestSeconds.observe({ method, route }, reply.elapsedTime / 1000);
  });
}
