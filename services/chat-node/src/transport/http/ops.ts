/** Operating a node (CONTRACT.md §5): liveness, readiness naming what failed, metrics. */
import type { FastifyInstance } from "fastify";
import type { Metrics } from "../../metrics.ts";

export interface Probe {
  name: string;
  check(): Promise<void>;
}

async function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

export interface OpsOptions {
  metrics: Metrics;
  probes: Probe[];
  isDraining(): boolean;
  /**
   * True while the node holds MAX_CONNECTIONS sockets and refuses new ones: /readyz answers 503
   * (`capacity`) so that balancers send new clients elsewhere, and 200 again once one leaves.
   * Its open sockets are not affected (liveness is /healthz).
   */
  isFull?(): boolean;
  nodeId: string;
}

export async function opsRoutes(app: FastifyInstance, d: OpsOptions): Promise<void> {
  app.get("/healthz", async () => ({ status: "ok", nodeId: d.nodeId }));

  app.get("/readyz", async (_req, reply) => {
    if (d.isDraining()) return reply.status(503).send({ status: "draining", nodeId: d.nodeId, failed: ["draining"] });
    const results = await Promise.all(
      d.probes.map(async (p) => {
        try {
          await withTimeout(p.check(), 2000);
          return { name: p.name, ok: true as const };
        } catch (err) {
          return { name: p.name, ok: false as const, error: (err as Error).message };
        }
      }),
    );
    const full = d.isFull?.() ?? false;
    const failed = [...(full ? ["capacity"] : []), ...results.filter((r) => !r.ok).map((r) => r.name)];
    const checks = Object.fromEntries([...results.map((r) => [r.name, r.ok ? "ok" : r.error]), ...(full ? [["capacity", "MAX_CONNECTIONS reached"]] : [])]);
    if (failed.length > 0) return reply.status(503).send({ status: failed.length === 1 && full ? "full" : "unavailable", nodeId: d.nodeId, failed, checks });
    return { status: "ready", nodeId: d.nodeId, checks };
  });

  app.get("/metrics", async (_req, reply) => {
    const body = await d.metrics.registry.metrics();
    return reply.header("content-type", d.metrics.registry.contentType).send(body);
  });
}
