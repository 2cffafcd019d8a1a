/**
 * The faults of `pnpm bench:faults`, each with the figures for it (issue 18): a node killed,
 * a node drained by SIGTERM from outside (nginx is not told, as when an orchestrator stops it), a
 * rolling restart through the launcher, Redis killed and started again after 3 s, and a node added
 * live and a loaded one removed. Each leaves the cluster with 3 nodes, all ready.
 */
import type { Cluster } from "../../../infra/cluster/cluster.ts";
import type { FaultContext, Scenario } from "./faults-run.ts";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits until every node answers /readyz 200. */
async function allReady(cluster: Cluster): Promise<void> {
  for (const n of cluster.nodes) await n.waitReady(30_000);
}

/** The node a fault hits: the second (any would do; not the first, which the report reads history from). */
function victimOf(ctx: FaultContext) {
  const v = ctx.cluster.nodes[1] ?? ctx.cluster.nodes[0];
  if (!v) throw new Error("the cluster has no node");
  return v;
}

export interface ScenarioTiming {
  /** How long a killed node stays down before it is started again. */
  downMs: number;
  /** How long Redis stays down. */
  redisDownMs: number;
  /** How long the added node runs before it is removed. */
  scaledMs: number;
}

export const DEFAULT_TIMING: ScenarioTiming = { downMs: 3000, redisDownMs: 3000, scaledMs: 5000 };

export function scenarios(t: ScenarioTiming = DEFAULT_TIMING): Scenario[] {
  return [
    {
      id: "kill",
      title: "kill -9 of 1 of 3 nodes",
      targets: { reconnectP99Ms: 3000 },
      async inject(ctx) {
        const v = victimOf(ctx);
        await v.stop("SIGKILL");
        ctx.log(`    ${v.nodeId} killed; started again in ${t.downMs} ms`);
        await sleep(t.downMs);
        const r = await ctx.cluster.restartNode(v.nodeId);
        ctx.note("restart", r.steps);
      },
    },
    {
      id: "sigterm",
      title: "SIGTERM of 1 of 3 nodes",
      targets: { reconnectP99Ms: 3000, nginx502: 0 },
      async inject(ctx) {
        const v = victimOf(ctx);
        const t0 = Date.now();
        const code = await v.stop("SIGTERM");
        ctx.note("drain", { exitCode: code, ms: Date.now() - t0 });
        ctx.log(`    ${v.nodeId} drained, exit ${code} after ${Date.now() - t0} ms; started again in 1 s`);
        await sleep(1000);
        const r = await ctx.cluster.restartNode(v.nodeId);
        ctx.note("restart", r.steps);
      },
    },
    {
      id: "rolling",
      title: "rolling restart of 3 nodes",
      targets: { reconnectP99Ms: 3000, nginx502: 0, spread: 1.5 },
      async inject(ctx) {
        const r = await ctx.cluster.rollingRestart({ log: (l) => ctx.log(`    ${l}`) });
        ctx.note("rolling", { durationMs: r.durationMs, steps: r.steps, before: r.before, after: r.after });
      },
    },
    {
      id: "redis",
      title: "Redis kill -9, back after 3 s",
      targets: { nginx502: 0, seedGaps: 0 },
      async inject(ctx) {
        const redis = ctx.cluster.redis;
        process.kill(redis.pid, "SIGKILL");
        ctx.log(`    redis-server (pid ${redis.pid}) killed; started again in ${t.redisDownMs} ms`);
        await sleep(t.redisDownMs);
        await redis.start();
        const t0 = Date.now();
        await allReady(ctx.cluster);
        ctx.note("readyAfterMs", Date.now() - t0);
      },
    },
    {
      id: "scale",
      title: "scale 3 → 4 → 3",
      // Out: a node added live (new connections may land there). In: a node holding clients is
      // removed (the original node-2, not the empty newcomer), so that the scale-in moves clients.
      targets: { reconnectP99Ms: 3000, nginx502: 0 },
      async inject(ctx) {
        const added = await ctx.cluster.addNode();
        const gone = victimOf(ctx);
        ctx.log(`    ${added.steps[0]?.nodeId} added; ${gone.nodeId} removed in ${t.scaledMs} ms`);
        await sleep(t.scaledMs);
        ctx.note("whileScaled", await ctx.cluster.connections());
        await ctx.cluster.removeNode(gone.nodeId);
      },
    },
  ];
}
