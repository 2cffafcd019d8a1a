/**
 * `pnpm cluster`: Redis, NODES chat nodes (default 3) and nginx on localhost, plus Prometheus when
 * installed; prints where to look and stops everything on Ctrl-C or SIGTERM.
 *
 * Environment: NODES, CLUSTER_PORT (nginx's port, default 8080; nodes on the next ports, then Redis
 * and Prometheus; 0 for free ports), CLUSTER_PROMETHEUS=0 to skip Prometheus, REDIS_ADAPTER,
 * REDIS_SHARDS (3 or more: a Redis Cluster of that many masters instead of one Redis), and any
 * chat node variable (JWT_SECRET, RATE_LIMIT_DISABLED, ...), passed to every node. Data, rendered
 * configs and logs live in CLUSTER_DIR (default .cluster/ at the repository root).
 */
import path from "node:path";
import { REPO_ROOT } from "@chat/process-kit";
import { CONFIG_VARIABLES } from "@chat/chat-node/config";
import { startCluster } from "./cluster.ts";

/** A malformed launcher variable: one line naming it, exit 78 (EX_CONFIG), as a node does. */
function refuse(message: string): never {
  console.error(`cluster: configuration error: ${message}`);
  process.exit(78);
}

const nodes = Number(process.env.NODES ?? "3");
const basePort = Number(process.env.CLUSTER_PORT ?? "8080");
if (!Number.isInteger(nodes) || nodes < 1) refuse(`NODES must be a positive integer, got "${process.env.NODES}"`);
if (!Number.isInteger(basePort) || basePort < 0 || basePort > 65000) refuse(`CLUSTER_PORT must be a port, got "${process.env.CLUSTER_PORT}"`);
const prometheusVar = process.env.CLUSTER_PROMETHEUS?.trim().toLowerCase() || "1";
const SWITCH: Record<string, boolean> = { "1": true, true: true, yes: true, on: true, "0": false, false: false, no: false, off: false };
if (!(prometheusVar in SWITCH)) refuse(`CLUSTER_PROMETHEUS must be one of 1, 0, true, false, yes, no, on, off, got "${process.env.CLUSTER_PROMETHEUS}"`);
const withPrometheus = SWITCH[prometheusVar]!;

// The launcher sets these per node itself.
const own = new Set(["PORT", "NODE_ID", "REDIS_URL", "DATA_DIR"]);
const env: Record<string, string> = {};
for (const name of CONFIG_VARIABLES) {
  const v = process.env[name];
  if (v !== undefined && !own.has(name)) env[name] = v;
}

const shards = Number(process.env.REDIS_SHARDS ?? "0");
if (!Number.isInteger(shards) || shards < 0 || shards === 2 || shards > 16) refuse(`REDIS_SHARDS must be 0 (one Redis) or 3..16 (a Redis Cluster), got "${process.env.REDIS_SHARDS}"`);

const workDir = path.resolve(process.env.CLUSTER_DIR?.trim() || path.join(REPO_ROOT, ".cluster"));
const adapterVar = process.env.REDIS_ADAPTER?.trim() || "classic";
if (adapterVar !== "classic" && adapterVar !== "sharded") refuse(`REDIS_ADAPTER must be classic or sharded, got "${process.env.REDIS_ADAPTER}"`);
const adapter: "classic" | "sharded" = adapterVar;
const redisKind = shards >= 3 ? `a ${shards}-shard Redis Cluster` : "Redis";
console.log(`starting ${nodes} node(s), ${redisKind} (${adapter} adapter) and nginx; logs in ${path.join(workDir, "logs")}`);
const cluster = await startCluster({
  nodes,
  env,
  redisAdapter: adapter,
  redisShards: shards,
  withPrometheus,
  basePort: basePort === 0 ? undefined : basePort,
  workDir,
  dataDir: path.join(workDir, "data"),
  logFiles: true,
});

console.log(`
chat cluster up
  load balancer  ${cluster.url}        (web page, /socket.io/, /conversations)
${cluster.nodes.map((n) => `  ${n.nodeId.padEnd(13)}  ${n.url}  pid ${n.pid}`).join("\n")}
  redis          ${cluster.redis.url}
${cluster.prometheusUrl ? `  prometheus     ${cluster.prometheusUrl}   (try: sum(chat_connected_sockets) by (node))` : !withPrometheus ? "  prometheus     skipped (CLUSTER_PROMETHEUS=0)" : "  prometheus     not installed (bash scripts/ensure.sh system prometheus)"}
  a token        pnpm token alice
Ctrl-C stops everything.`);

for (const n of cluster.nodes) {
  n.proc().exited.then(({ code, signal }) => {
    if (!stopping) console.log(`${n.nodeId} exited (code ${code}, signal ${signal}); see ${path.join(workDir, "logs", `${n.nodeId}.log`)}`);
  }, () => undefined);
}

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping nginx, draining the nodes, stopping Redis${cluster.prometheusUrl ? " and Prometheus" : ""}`);
  await cluster.stop();
  process.exit(0);
}
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));
