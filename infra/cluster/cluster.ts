/**
 * The local cluster without Docker: Debian's redis-server, N chat nodes sharing one embedded store
 * (DATA_DIR) and one Redis, nginx in front with the project's own config (infra/nginx), and, when
 * asked and installed, Prometheus scraping every node. `pnpm cluster` (cli.ts) and the cluster
 * fault tests both start it here, so the configuration users run is the one the tests check.
 *
 * Every process is a child tracked by PID (through @chat/process-kit, whose stopAll() also ends them if a
 * test fails half-way) and stopped by stop(). Ports are free loopback ports unless `basePort` is
 * given: nginx on basePort, node i on basePort+i, Redis on basePort+N+1, Prometheus on basePort+N+2,
 * and with `redisShards` > 1 (a Redis Cluster) shard k on basePort+N+1+k for k >= 2; nginx's status
 * server (nginx.ts) and nodes added later on free ports.
 *
 * The running cluster's operations (rolling restart, one node's restart, adding and removing nodes)
 * are in operations.ts; the Cluster handle exposes them.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { REPO_ROOT, freePort, startProcess, tempDir } from "@chat/process-kit";
import { mirror } from "./logs.ts";
import { startNginx, type NginxHandle } from "./nginx.ts";
import { createNode, type ClusterNode } from "./nodes.ts";
import { ClusterOperations, type Log, type OperationReport, type RollingOptions } from "./operations.ts";
import { startRedis, type RedisHandle } from "./redis.ts";

export { renderNginx } from "./nginx.ts";
export type { ClusterNode } from "./nodes.ts";
export type { OperationReport, RollingOptions, StepReport } from "./operations.ts";

export interface ClusterOptions {
  nodes?: number;
  /** Extra environment for every node (the node's own variables: see CONFIG_VARIABLES). */
  env?: Record<string, string>;
  redisAdapter?: "classic" | "sharded";
  /** 0 (default): one standalone Redis; 3 or more: a Redis Cluster of that many masters (infra/cluster/redis.ts). */
  redisShards?: number;
  withPrometheus?: boolean;
  /** The shared DATA_DIR (embedded store); a fresh temporary directory by default. */
  dataDir?: string;
  basePort?: number;
  /** Where nginx's rendered config, logs and Prometheus' data go; a fresh temporary directory by default. */
  workDir?: string;
  /** Mirror every process's output into `<workDir>/logs/<name>.log`. */
  logFiles?: boolean;
  /** nginx also serves TLS (https://, wss://) with this certificate and key, on `port` (a free one by default). */
  tls?: { certFile: string; keyFile: string; port?: number };
  /** Install redis-server/nginx with scripts/ensure.sh when missing and running as root or with password-less sudo (default true). */
  install?: boolean;
}

export interface Cluster {
  /** The load balancer (nginx). */
  url: string;
  /** Its TLS listener (`https://127.0.0.1:<port>`), when ClusterOptions.tls was given. */
  tlsUrl?: string;
  /** The nodes, in upstream order; operations add and remove entries of this same array. */
  nodes: ClusterNode[];
  redis: RedisHandle;
  nginx: { pid: number; workDir: string; accessLog(): string; errorLog(): string; readonly generation: number };
  /** The `chat_sticky` cookie (`chat_sticky=<key>`) that pins a client to a node through nginx. */
  stickyCookie(nodeId: string): string;
  prometheusUrl?: string;
  workDir: string;
  dataDir: string;
  /** Restarts every node one at a time (operations.ts); connections end spread evenly. */
  rollingRestart(o?: RollingOptions): Promise<OperationReport>;
  /** Drains one node, starts it again on its port, waits until it is ready. */
  restartNode(nodeId: string, log?: Log): Promise<OperationReport>;
  /** Starts one more node (next id, a free port) and adds it to nginx's upstream. */
  addNode(log?: Log): Promise<OperationReport>;
  /** Takes a node (by default the last one) out of nginx's upstream and drains it. */
  removeNode(nodeId?: string, log?: Log): Promise<OperationReport>;
  /** Connections per node (`chat_connected_sockets` of each). */
  connections(): Promise<Record<string, number>>;
  /** The operation running now, if any. */
  operation(): string | undefined;
  stop(): Promise<void>;
}

const ALERTS = path.join(REPO_ROOT, "infra/prometheus/alerts.yml");

function which(cmd: string, extra: string[] = []): string | undefined {
  for (const dir of [...(process.env.PATH ?? "").split(":"), ...extra]) {
    const full = path.join(dir, cmd);
    try {
      fs.accessSync(full, fs.constants.X_OK);
      return full;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** Finds a Debian command, installing its package through scripts/ensure.sh when allowed. */
function requireCommand(cmd: string, what: "redis" | "nginx" | "prometheus", install: boolean): string {
  const sbin = ["/usr/sbin", "/usr/local/sbin", "/sbin"];
  let found = which(cmd, sbin);
  const mayInstall = install && (process.getuid?.() === 0 || spawnSync("sudo", ["-n", "true"]).status === 0);
  if (!found && mayInstall) {
    const r = spawnSync("bash", [path.join(REPO_ROOT, "scripts/ensure.sh"), "system", what], { stdio: "inherit" });
    if (r.status === 0) found = which(cmd, sbin);
  }
  if (!found) {
    throw new Error(
      `${cmd} is not installed and could not be installed here: run \`bash scripts/ensure.sh system ${what}\` as root ` +
        `(or \`sudo apt-get install ${what === "redis" ? "redis-server" : what === "nginx" ? "nginx-light" : "prometheus"}\`), then try again`,
    );
  }
  return found;
}

async function waitHttp(url: string, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (${url}): ${last}`);
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const n = opts.nodes ?? 3;
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error(`nodes must be 1..64, got ${n}`);
  const install = opts.install ?? true;
  const redisBin = requireCommand("redis-server", "redis", install);
  const nginxBin = requireCommand("nginx", "nginx", install);
  const promBin = opts.withPrometheus ? which("prometheus") : undefined;

  const workDir = opts.workDir ?? tempDir("chat-cluster-");
  fs.mkdirSync(workDir, { recursive: true });
  const dataDir = opts.dataDir ?? path.join(workDir, "data");
  fs.mkdirSync(dataDir, { recursive: true });
  const logDir = opts.logFiles ? path.join(workDir, "logs") : undefined;
  if (logDir) fs.mkdirSync(logDir, { recursive: true });

  const port = async (offset: number) => (opts.basePort ? opts.basePort + offset : freePort());
  const lbPort = await port(0);
  const nodePorts: number[] = [];
  for (let i = 1; i <= n; i++) nodePorts.push(await port(i));
  const redisPort = await port(n + 1);
  const promPort = await port(n + 2);
  const lbUrl = `http://127.0.0.1:${lbPort}`;
  const tlsPort = opts.tls ? (opts.tls.port ?? (await freePort())) : undefined;
  const tlsUrl = tlsPort === undefined ? undefined : `https://127.0.0.1:${tlsPort}`;

  const stops: (() => Promise<unknown>)[] = [];
  const stopAllStarted = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };

  try {
    // Redis: no persistence; the adapter, presence and typing hold only live state.
    const morePorts: number[] = [];
    for (let i = 1; i < (opts.redisShards ?? 0); i++) morePorts.push(await port(n + 2 + i));
    const redis = await startRedis({
      redisBin,
      dir: path.join(workDir, "redis"),
      port: redisPort,
      morePorts,
      shards: opts.redisShards,
      onStart: (p, name) => mirror(p, logDir, name),
    });
    stops.push(() => redis.stop());

    const nodeSpec = (index: number, p: number) => {
      const nodeId = `node-${index}`;
      const env: Record<string, string> = {
        HOST: "127.0.0.1",
        CORS_ORIGINS: `${lbUrl},http://localhost:${lbPort},http://localhost:3000${tlsUrl ? `,${tlsUrl},https://localhost:${tlsPort}` : ""}`,
        // No JWT_SECRET given: the local demo, with the published secret and POST /dev/token (docs/security.md).
        ...(opts.env?.JWT_SECRET ? {} : { DEV_INSECURE_TOKENS: "1" }),
        ...opts.env,
        PORT: String(p),
        NODE_ID: nodeId,
        REDIS_URL: redis.url,
        REDIS_ADAPTER: opts.redisAdapter ?? opts.env?.REDIS_ADAPTER ?? "classic",
        DATA_DIR: dataDir,
      };
      return { nodeId, port: p, env, logDir };
    };
    const nodes: ClusterNode[] = nodePorts.map((p, i) => createNode(nodeSpec(i + 1, p)));
    // Drained together at the end (every node, those added later too); started one at a time: the
    // first opens and migrates the shared SQLite file.
    stops.push(() => Promise.all(nodes.map((nd) => nd.stop("SIGTERM"))));
    for (const node of nodes) await node.restart();
    let highest = n;

    const nginxDir = path.join(workDir, "nginx");
    const nginx: NginxHandle = await startNginx({
      nginxBin,
      dir: nginxDir,
      listen: `127.0.0.1:${lbPort}`,
      statusPort: await freePort(),
      servers: nodePorts.map((p) => ({ port: p })),
      devTokens: !opts.env?.JWT_SECRET,
      ...(opts.tls && tlsPort !== undefined ? { tls: { listen: `127.0.0.1:${tlsPort}`, certFile: opts.tls.certFile, keyFile: opts.tls.keyFile } } : {}),
      onStart: (p) => mirror(p, logDir, "nginx"),
    });
    stops.push(() => nginx.stop());
    await waitHttp(`${lbUrl}/healthz`, 15_000, "nginx").catch((err: Error) => {
      throw new Error(`${err.message}\n${nginx.proc.output()}\n${nginx.errorLog().slice(-2000)}`);
    });
    const stickyCookie = (nodeId: string) => {
      const node = nodes.find((nd) => nd.nodeId === nodeId);
      const key = node && nginx.stickyKey(node.port);
      if (!key) throw new Error(`no node ${nodeId}`);
      return `chat_sticky=${key}`;
    };
    // The keys come from ring.ts's copy of nginx's consistent hash: check them against nginx itself.
    for (const node of nodes) {
      const res = await fetch(`${lbUrl}/healthz`, { headers: { cookie: stickyCookie(node.nodeId) } });
      const answered = ((await res.json()) as { nodeId?: string }).nodeId;
      if (answered !== node.nodeId) throw new Error(`nginx sent ${stickyCookie(node.nodeId)} to ${answered}, not ${node.nodeId}: infra/cluster/ring.ts no longer matches this nginx's consistent hash`);
    }

    let prometheusUrl: string | undefined;
    let writePrometheusTargets = async () => undefined as unknown;
    if (promBin) {
      const promDir = path.join(workDir, "prometheus");
      fs.mkdirSync(path.join(promDir, "data"), { recursive: true });
      const rules = fs.existsSync(ALERTS) ? `rule_files:\n  - ${JSON.stringify(ALERTS)}\n` : "";
      const writeConfig = () => {
        const targets = nodes.map((nd) => `"127.0.0.1:${nd.port}"`).join(", ");
        fs.writeFileSync(
          path.join(promDir, "prometheus.yml"),
          `# Generated by infra/cluster/cluster.ts for the local cluster.\nglobal:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n  external_labels:\n    cluster: chat-local\n${rules}scrape_configs:\n  - job_name: chat\n    static_configs:\n      - targets: [${targets}]\n`,
        );
      };
      writeConfig();
      const prom = startProcess(promBin, [
        `--config.file=${path.join(promDir, "prometheus.yml")}`,
        `--storage.tsdb.path=${path.join(promDir, "data")}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        "--web.enable-remote-write-receiver",
        "--web.enable-lifecycle",
      ]);
      mirror(prom, logDir, "prometheus");
      stops.push(() => prom.stop("SIGTERM", 10_000));
      prometheusUrl = `http://127.0.0.1:${promPort}`;
      await waitHttp(`${prometheusUrl}/-/ready`, 30_000, "prometheus");
      const url = prometheusUrl;
      // Nodes added or removed: new targets, and a reload through the lifecycle API.
      writePrometheusTargets = async () => {
        writeConfig();
        await fetch(`${url}/-/reload`, { method: "POST", signal: AbortSignal.timeout(5000) }).catch(() => undefined);
      };
    }

    const ops = new ClusterOperations({
      nodes,
      reloadUpstream: (servers) => nginx.reload(servers),
      async newNode() {
        highest++;
        const node = createNode(nodeSpec(highest, await freePort()));
        try {
          await node.restart();
          await node.waitReady();
        } catch (err) {
          await node.stop("SIGKILL");
          throw err;
        }
        return node;
      },
      nodesChanged: () => writePrometheusTargets().then(() => undefined),
    });

    return {
      url: lbUrl,
      ...(tlsUrl ? { tlsUrl } : {}),
      nodes,
      redis,
      nginx: {
        pid: nginx.pid,
        workDir: nginxDir,
        accessLog: () => nginx.accessLog(),
        errorLog: () => nginx.errorLog(),
        get generation() {
          return nginx.generation;
        },
      },
      stickyCookie,
      prometheusUrl,
      workDir,
      dataDir,
      rollingRestart: (o) => ops.rollingRestart(o),
      restartNode: (nodeId, log) => ops.restartNode(nodeId, log),
      addNode: (log) => ops.addNode(log),
      removeNode: (nodeId, log) => ops.removeNode(nodeId, log),
      connections: () => ops.connections(),
      operation: () => ops.running(),
      stop: stopAllStarted,
    };
  } catch (err) {
    await stopAllStarted();
    throw err;
  }
}
