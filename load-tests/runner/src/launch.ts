/**
 * Starts the systems the benchmark compares, each as its own process on a free loopback port:
 * the project's chat node, the seed reference, the raw `ws` floor, and (when its launcher exists)
 * the project's 2-node cluster behind nginx and Redis. Processes are started through @chat/process-kit,
 * so a test's `stopAll()` ends any left behind.
 */
import path from "node:path";
import fs from "node:fs";
import { pathToFileURL } from "node:url";
import { CHAT_NODE_OPTIONS, NODE_MAIN, REPO_ROOT, freePort, startProcess, tempDir, waitForOutput, type Proc } from "@chat/process-kit";

export type SystemKind = "chat" | "cluster" | "seed" | "raw";

export interface Running {
  kind: SystemKind;
  url: string;
  /** The server processes (RSS and CPU are read from them). */
  pids: number[];
  /** cluster only: the processes by role (nodes, redis, nginx: master and workers), for CPU shares. */
  groups?: Record<string, number[]>;
  stop(): Promise<void>;
}

export const BENCH_SECRET = "bench-secret-0123456789abcdef0123";

const PEERS = path.join(import.meta.dirname, "peers");

export interface LaunchOptions {
  /** Extra node flags for the server process (e.g. `--cpu-prof`). */
  execArgv?: string[];
  env?: Record<string, string>;
  /** cluster only: how many nodes (default 2) and which Redis adapter (default: the node's, classic). */
  clusterNodes?: number;
  redisAdapter?: "classic" | "sharded";
}

async function startNodeProcess(script: string, env: Record<string, string>, ready: (out: string) => boolean, o: LaunchOptions): Promise<Proc> {
  const p = startProcess(process.execPath, [...(o.execArgv ?? []), script], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env, ...o.env },
  });
  await waitForOutput(p, ready, 30_000, `${path.basename(script)} to listen`);
  return p;
}

/** Polls `GET <url>/healthz` until it answers 200 (the node logs "listening" only at LOG_LEVEL=info). */
async function waitHealthy(p: Proc, url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (p.proc.exitCode !== null || p.proc.signalCode !== null) throw new Error(`the node exited before listening:\n${p.output().slice(-4000)}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.status === 200) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${url}/healthz:\n${p.output().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The environment the chat node is benchmarked with: embedded store, durability on, no rate limits. */
export function chatNodeEnv(port: number): Record<string, string> {
  return {
    PORT: String(port),
    HOST: "127.0.0.1",
    NODE_ID: `bench-${port}`,
    DATA_DIR: tempDir("chat-bench-"),
    JWT_SECRET: BENCH_SECRET,
    RATE_LIMIT_DISABLED: "1",
    LOG_LEVEL: "warn",
    NODE_ENV: "production",
    // The project's V8 options, as every launcher gives them; `--chat-env NODE_OPTIONS=...` replaces them.
    NODE_OPTIONS: CHAT_NODE_OPTIONS,
  };
}

export async function launch(kind: SystemKind, o: LaunchOptions = {}): Promise<Running> {
  if (kind === "cluster") return launchCluster(o);
  const port = await freePort();
  let p: Proc;
  if (kind === "chat") {
    p = await startNodeProcess(NODE_MAIN, chatNodeEnv(port), () => true, o);
    await waitHealthy(p, `http://127.0.0.1:${port}`);
  }
  else if (kind === "seed") p = await startNodeProcess(path.join(PEERS, "seed-reference.ts"), { PORT: String(port) }, (out) => out.includes("Socket.IO server running"), o);
  else p = await startNodeProcess(path.join(PEERS, "raw-ws.ts"), { PORT: String(port), HOST: "127.0.0.1" }, (out) => out.includes("raw-ws listening"), o);
  return {
    kind,
    url: kind === "raw" ? `ws://127.0.0.1:${port}` : `http://127.0.0.1:${port}`,
    pids: [p.pid],
    stop: async () => {
      await p.stop("SIGTERM", 15_000);
    },
  };
}

interface ClusterHandle {
  url: string;
  nodes: { url: string; pid: number }[];
  stop(): Promise<void>;
}
type StartCluster = (o: { nodes: number; env?: Record<string, string>; install?: boolean; redisAdapter?: "classic" | "sharded" }) => Promise<ClusterHandle & { redis?: { pid: number }; nginx?: { pid: number } }>;

/** A process's children (Linux: /proc/<pid>/task/<tid>/children), e.g. nginx's workers. */
function childrenOf(pid: number): number[] {
  try {
    const out: number[] = [];
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const kids = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
      if (kids) out.push(...kids.split(/\s+/).map(Number));
    }
    return out;
  } catch {
    return [];
  }
}

export const CLUSTER_LAUNCHER = path.join(REPO_ROOT, "infra/cluster/cluster.ts");

/** True when the cluster launcher (another issue's work) is in the checkout. */
export function clusterAvailable(): boolean {
  return fs.existsSync(CLUSTER_LAUNCHER);
}

async function launchCluster(o: LaunchOptions): Promise<Running> {
  const mod = (await import(pathToFileURL(CLUSTER_LAUNCHER).href)) as { startCluster?: StartCluster };
  if (typeof mod.startCluster !== "function") throw new Error(`${CLUSTER_LAUNCHER} exports no startCluster`);
  const c = await mod.startCluster({
    nodes: o.clusterNodes ?? 2,
    install: false,
    ...(o.redisAdapter ? { redisAdapter: o.redisAdapter } : {}),
    env: { JWT_SECRET: BENCH_SECRET, RATE_LIMIT_DISABLED: "1", LOG_LEVEL: "warn", ...o.env },
  });
  const groups: Record<string, number[]> = { nodes: c.nodes.map((n) => n.pid) };
  if (c.redis) groups.redis = [c.redis.pid];
  if (c.nginx) groups.nginx = [c.nginx.pid, ...childrenOf(c.nginx.pid)];
  // `pids` (what a step's serverCpuCores sums) stays the nodes', as before; `groups` has the rest.
  return { kind: "cluster", url: c.url.replace(/\/+$/, ""), pids: groups.nodes!, groups, stop: () => c.stop() };
}
