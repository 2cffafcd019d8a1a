/**
 * The local cluster without Docker: Debian's redis-server, N chat nodes sharing one embedded store
 * (DATA_DIR) and one Redis, nginx in front with the project's own config (infra/nginx), and, when
 * asked and installed, Prometheus scraping every node. `pnpm cluster` (cli.ts) and the cluster
 * fault tests both start it here, so the configuration users run is the one the tests check.
 *
 * Every process is a child tracked by PID (through @chat/process-kit, whose stopAll() also ends them if a
 * test fails half-way) and stopped by stop(). Ports are free loopback ports unless `basePort` is
 * given: nginx on basePort, node i on basePort+i, Redis on basePort+N+1, Prometheus on basePort+N+2,
 * and with `redisShards` > 1 (a Redis Cluster) shard k on basePort+N+1+k for k >= 2.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { NODE_MAIN, REPO_ROOT, chatNodeOptions, freePort, startProcess, tempDir, type Proc } from "@chat/process-kit";
import { startRedis, type RedisHandle } from "./redis.ts";

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
  /** Install redis-server/nginx with scripts/ensure.sh when missing and running as root or with password-less sudo (default true). */
  install?: boolean;
}

export interface ClusterNode {
  url: string;
  port: number;
  pid: number;
  nodeId: string;
  proc(): Proc;
  /** Signals the node (SIGTERM: drain) and resolves to its exit code (null when killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Starts it again on the same port with the same environment. */
  restart(): Promise<void>;
}

export interface Cluster {
  /** The load balancer (nginx). */
  url: string;
  nodes: ClusterNode[];
  redis: RedisHandle;
  nginx: { pid: number; workDir: string; accessLog(): string };
  prometheusUrl?: string;
  workDir: string;
  dataDir: string;
  stop(): Promise<void>;
}

const NGINX_DIR = path.join(REPO_ROOT, "infra/nginx");
const WEB_ROOT = path.join(REPO_ROOT, "services/web/dist");
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

function mirror(p: Proc, logDir: string | undefined, name: string): void {
  if (!logDir) return;
  const out = fs.createWriteStream(path.join(logDir, `${name}.log`), { flags: "a" });
  p.proc.stdout?.on("data", (d: Buffer) => out.write(d));
  p.proc.stderr?.on("data", (d: Buffer) => out.write(d));
  p.proc.once("exit", () => out.end());
}

function minimalMimeTypes(): string {
  return `types {
    text/html html htm;
    text/css css;
    application/javascript js mjs;
    application/json json map;
    image/svg+xml svg;
    image/png png;
    image/x-icon ico;
    font/woff2 woff2;
}
`;
}

/** Renders infra/nginx/local.conf.template for these nodes into `dir`. Exported for the config tests. */
export function renderNginx(dir: string, o: { listen: string; nodePorts: number[]; workers?: number; webRoot?: string }): string {
  fs.mkdirSync(path.join(dir, "tmp"), { recursive: true });
  for (const f of ["sticky.conf", "chat-common.conf"]) fs.copyFileSync(path.join(NGINX_DIR, f), path.join(dir, f));
  const mime = "/etc/nginx/mime.types";
  fs.writeFileSync(path.join(dir, "mime.types"), fs.existsSync(mime) ? fs.readFileSync(mime) : minimalMimeTypes());
  const maxFails = 1;
  const failTimeout = "5s";
  const servers = o.nodePorts.map((p) => `        server 127.0.0.1:${p} max_fails=${maxFails} fail_timeout=${failTimeout};`).join("\n");
  const vars: Record<string, string> = {
    WORKERS: String(o.workers ?? 1),
    PREFIX: dir,
    INCLUDE: dir,
    LISTEN: o.listen,
    WEB_ROOT: o.webRoot ?? WEB_ROOT,
    SERVERS: servers,
    NODES: String(o.nodePorts.length),
    MAX_FAILS: String(maxFails),
    FAIL_TIMEOUT: failTimeout,
  };
  const template = fs.readFileSync(path.join(NGINX_DIR, "local.conf.template"), "utf8");
  const conf = template.replace(/\{\{([A-Z_]+)\}\}/g, (_, k: string) => {
    const v = vars[k];
    if (v === undefined) throw new Error(`local.conf.template: no value for {{${k}}}`);
    return v;
  });
  const file = path.join(dir, "nginx.conf");
  fs.writeFileSync(file, conf);
  // Workers run as `nobody` when the master is root: they must reach the temp paths.
  fs.chmodSync(dir, 0o755);
  return file;
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

/**
 * A node is up when it logs "listening" (at LOG_LEVEL info or below) or when /healthz on its port
 * answers with its own nodeId (any level): another process on that port must not pass for it.
 */
async function waitListening(proc: Proc, healthz: string, nodeId: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.output().includes('"msg":"listening"')) return;
    if (proc.proc.exitCode !== null || proc.proc.signalCode !== null) throw new Error(`${nodeId} exited before listening:\n${proc.output().slice(-4000)}`);
    try {
      const res = await fetch(healthz, { signal: AbortSignal.timeout(500) });
      if (res.ok && ((await res.json()) as { nodeId?: string }).nodeId === nodeId) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${nodeId} to listen:\n${proc.output().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
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

    const nodes: ClusterNode[] = nodePorts.map((p, i) => {
      const nodeId = `node-${i + 1}`;
      const env: Record<string, string> = {
        HOST: "127.0.0.1",
        CORS_ORIGINS: `${lbUrl},http://localhost:${lbPort},http://localhost:3000`,
        // No JWT_SECRET given: the local demo, with the published secret and POST /dev/token (docs/security.md).
        ...(opts.env?.JWT_SECRET ? {} : { DEV_INSECURE_TOKENS: "1" }),
        ...opts.env,
        PORT: String(p),
        NODE_ID: nodeId,
        REDIS_URL: redis.url,
        REDIS_ADAPTER: opts.redisAdapter ?? opts.env?.REDIS_ADAPTER ?? "classic",
        DATA_DIR: dataDir,
      };
      let proc: Proc | undefined;
      const node: ClusterNode = {
        url: `http://127.0.0.1:${p}`,
        port: p,
        pid: -1,
        nodeId,
        proc: () => {
          if (!proc) throw new Error(`${nodeId} was never started`);
          return proc;
        },
        async restart() {
          if (proc && proc.proc.exitCode === null && proc.proc.signalCode === null) await proc.stop("SIGTERM");
          proc = startProcess(process.execPath, [NODE_MAIN], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env, NODE_OPTIONS: chatNodeOptions(env.NODE_OPTIONS) } });
          mirror(proc, logDir, nodeId);
          await waitListening(proc, `http://127.0.0.1:${p}/healthz`, nodeId);
          node.pid = proc.pid;
        },
        async stop(signal: NodeJS.Signals = "SIGTERM") {
          return proc ? proc.stop(signal) : null;
        },
      };
      return node;
    });
    // Drained together at the end; started one at a time: the first opens and migrates the shared SQLite file.
    stops.push(() => Promise.all(nodes.map((nd) => nd.stop("SIGTERM"))));
    for (const node of nodes) await node.restart();

    const nginxDir = path.join(workDir, "nginx");
    const conf = renderNginx(nginxDir, { listen: `127.0.0.1:${lbPort}`, nodePorts });
    const nginx = startProcess(nginxBin, ["-p", nginxDir, "-c", conf, "-e", path.join(nginxDir, "error.log"), "-g", "daemon off;"]);
    mirror(nginx, logDir, "nginx");
    stops.push(() => nginx.stop("SIGQUIT", 5000));
    await waitHttp(`${lbUrl}/healthz`, 15_000, "nginx").catch((err: Error) => {
      const log = fs.existsSync(path.join(nginxDir, "error.log")) ? fs.readFileSync(path.join(nginxDir, "error.log"), "utf8") : "";
      throw new Error(`${err.message}\n${nginx.output()}\n${log.slice(-2000)}`);
    });

    let prometheusUrl: string | undefined;
    if (promBin) {
      const promDir = path.join(workDir, "prometheus");
      fs.mkdirSync(path.join(promDir, "data"), { recursive: true });
      const rules = fs.existsSync(ALERTS) ? `rule_files:\n  - ${JSON.stringify(ALERTS)}\n` : "";
      const targets = nodes.map((nd) => `"127.0.0.1:${nd.port}"`).join(", ");
      fs.writeFileSync(
        path.join(promDir, "prometheus.yml"),
        `# Generated by infra/cluster/cluster.ts for the local cluster.\nglobal:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n  external_labels:\n    cluster: chat-local\n${rules}scrape_configs:\n  - job_name: chat\n    static_configs:\n      - targets: [${targets}]\n`,
      );
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
    }

    return {
      url: lbUrl,
      nodes,
      redis,
      nginx: { pid: nginx.pid, workDir: nginxDir, accessLog: () => fs.readFileSync(path.join(nginxDir, "access.log"), "utf8") },
      prometheusUrl,
      workDir,
      dataDir,
      stop: stopAllStarted,
    };
  } catch (err) {
    await stopAllStarted();
    throw err;
  }
}
