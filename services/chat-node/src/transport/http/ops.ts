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

export async function opsRoutes(app: FastifyInstance, d: { metrics: Metrics; probes: Probe[]; isDraining(): boolean; nodeId: string }): Promise<void> {
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
    const failed = results.filter((r) => !r.ok);
    const checks = Object.fromEntries(results.map((r) => [r.name, r.ok ? "ok" : r.error]));
    if (failed.length > 0) return reply.status(503).send({ status: "unavailable", nodeId: d.nodeId, failed: failed.map((f) => f.name), checks });
    return { status: "ready", nodeId: d.nodeId, checks };
  });

  app.get("/metrics", async (_req, reply) => {
    const body = await d.metrics.registry.metrics();
    return reply.header("content-type", d.metrics.registry.contentType).send(body);
  });
}
