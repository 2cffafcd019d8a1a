/**
 * `pnpm cluster [command]`: without a command, starts Redis, NODES chat nodes (default 3) and nginx
 * on localhost, plus Prometheus when installed, prints where to look and keeps them running until
 * Ctrl-C or SIGTERM. The other commands (USAGE) act on that running launcher through its control
 * socket (control.ts); SIGHUP, SIGTTIN and SIGTTOU sent to the launcher do the same as `restart`,
 * `add` and `remove`.
 *
 * Environment: NODES, CLUSTER_PORT (nginx's port, default 8080; nodes on the next ports, then Redis
 * and Prometheus; 0 for free ports), CLUSTER_PROMETHEUS=0 to skip Prometheus, REDIS_ADAPTER,
 * REDIS_SHARDS (3 or more: a Redis Cluster of that many masters instead of one Redis), and any
 * chat node variable (JWT_SECRET, RATE_LIMIT_DISABLED, ...), passed to every node. CLUSTER_TLS_CERT_FILE
 * and CLUSTER_TLS_KEY_FILE (PEM, both or neither) add nginx's TLS listener on CLUSTER_TLS_PORT
 * (default 8443; a free port with CLUSTER_PORT=0): https:// and wss://, the same routes. Data, rendered
 * configs, logs, the control socket and the launcher's PID live in CLUSTER_DIR (default .cluster/
 * at the repository root).
 */
import { X509Certificate, createPrivateKey } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { REPO_ROOT } from "@chat/process-kit";
import { CONFIG_VARIABLES } from "@chat/chat-node/config";
import { spreadRatio } from "./balance.ts";
import { startCluster, type Cluster, type OperationReport } from "./cluster.ts";
import { NoLauncherError, reachable, sendControl, serveControl, type ControlRequest } from "./control.ts";

const USAGE = `usage: pnpm cluster [command]

  (none) or up          start Redis, NODES chat nodes, nginx (and Prometheus) and keep them running
  status                the running cluster: each node's port, pid, readiness and connections
  restart               rolling restart: one node at a time, drained (SIGTERM), started again on its
                        port, back in nginx once /readyz answers 200; one extra node runs meanwhile,
                        so that no node is left empty and connections end spread evenly
  restart --no-surge    the same without the extra node (the last node restarted stays empty)
  restart <node-id>     drain and restart that node only
  add                   start one more node (next id, a free port) and add it to nginx
  remove [node-id]      take a node (default: the last one) out of nginx, then drain it
  scale <n>             add or remove nodes until there are n
  stop                  stop the running cluster, as Ctrl-C does
  help                  this text

Signals to the running launcher (its PID is in CLUSTER_DIR/launcher.pid):
  SIGHUP    rolling restart (as \`restart\`)
  SIGTTIN   add a node (as \`add\`)
  SIGTTOU   remove the last node (as \`remove\`)
  SIGINT, SIGTERM   stop everything

Environment (for starting): NODES (3), CLUSTER_PORT (8080: nginx; node i on CLUSTER_PORT+i; 0: free
ports), CLUSTER_PROMETHEUS (1), CLUSTER_DIR (.cluster), REDIS_SHARDS (0), REDIS_ADAPTER (classic),
CLUSTER_TLS_CERT_FILE and CLUSTER_TLS_KEY_FILE (PEM files, both or neither: nginx also serves TLS, on
CLUSTER_TLS_PORT, default 8443, a free port with CLUSTER_PORT=0), and any chat node variable (JWT_SECRET, RATE_LIMIT_DISABLED, ...), passed to every node.
The commands find the running launcher by CLUSTER_DIR. With docker compose, a rolling restart is
one \`docker restart\` per chat replica, each after the previous one is healthy again (docs/cluster.md
has the loop, and the details of all of the above).
`;

/** A malformed launcher variable: one line naming it, exit 78 (EX_CONFIG), as a node does. */
function refuse(message: string): never {
  console.error(`cluster: configuration error: ${message}`);
  process.exit(78);
}

const workDir = path.resolve(process.env.CLUSTER_DIR?.trim() || path.join(REPO_ROOT, ".cluster"));
const socketPath = path.join(workDir, "control.sock");
const pidFile = path.join(workDir, "launcher.pid");
const [command = "up", ...args] = process.argv.slice(2).filter((a) => a !== "--");

const COMMANDS = new Set(["up", "status", "restart", "add", "remove", "scale", "stop", "help", "--help", "-h"]);
if (!COMMANDS.has(command)) {
  console.error(`cluster: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
  process.exit(2);
}
if (command === "help" || command === "--help" || command === "-h") {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (command !== "up") await runCommand({ command, args });
else await up();

/** A command against the running launcher: its progress lines, then its result; exit 1 when it failed. */
async function runCommand(req: ControlRequest): Promise<never> {
  try {
    const result = await sendControl(socketPath, req, (line) => console.log(line));
    printResult(req.command, result);
    process.exit(0);
  } catch (err) {
    if (err instanceof NoLauncherError) console.error(`cluster: no cluster is running in ${workDir} (start one with \`pnpm cluster\`, or set CLUSTER_DIR)`);
    else console.error(`cluster: ${req.command} failed: ${(err as Error).message}`);
    process.exit(1);
  }
}

interface StatusNode {
  nodeId: string;
  url: string;
  pid: number;
  running: boolean;
  ready: boolean;
  connections: number;
}
interface Status {
  url: string;
  launcherPid: number;
  operation?: string;
  nodes: StatusNode[];
}

function formatConnections(c: Record<string, number>): string {
  const ratio = spreadRatio(Object.values(c));
  return `${Object.entries(c).map(([id, n]) => `${id} ${n}`).join(", ")} (busiest/least busy ${Number.isFinite(ratio) ? ratio.toFixed(2) : "∞"})`;
}

function printResult(cmd: string, result: unknown): void {
  if (cmd === "status") {
    const s = result as Status;
    console.log(`load balancer ${s.url}, launcher pid ${s.launcherPid}${s.operation ? `, running: ${s.operation}` : ""}`);
    for (const n of s.nodes) {
      console.log(`  ${n.nodeId.padEnd(8)} ${n.url}  pid ${String(n.pid).padEnd(7)} ${!n.running ? "exited" : n.ready ? "ready" : "not ready"}  ${n.connections} connections`);
    }
    return;
  }
  if (cmd === "stop") return void console.log("stopping");
  const r = result as OperationReport | undefined;
  if (!r) return;
  console.log(`${r.operation}: done in ${(r.durationMs / 1000).toFixed(1)} s`);
  console.log(`  connections before: ${formatConnections(r.before)}`);
  console.log(`  connections after:  ${formatConnections(r.after)}`);
}

/**
 * CLUSTER_TLS_CERT_FILE / CLUSTER_TLS_KEY_FILE: both or neither; each a readable PEM file of its
 * kind. Checked here, so that a bad path names its variable instead of an nginx error later.
 */
function tlsSettings(basePort: number): { certFile: string; keyFile: string; port?: number } | undefined {
  const cert = process.env.CLUSTER_TLS_CERT_FILE?.trim() || undefined;
  const key = process.env.CLUSTER_TLS_KEY_FILE?.trim() || undefined;
  const portVar = process.env.CLUSTER_TLS_PORT?.trim() || undefined;
  if (!cert && !key) {
    if (portVar) refuse("CLUSTER_TLS_PORT is set but CLUSTER_TLS_CERT_FILE and CLUSTER_TLS_KEY_FILE are not: TLS needs a certificate and its key");
    return undefined;
  }
  if (!cert) refuse("CLUSTER_TLS_CERT_FILE is not set, but CLUSTER_TLS_KEY_FILE is: TLS needs both");
  if (!key) refuse("CLUSTER_TLS_KEY_FILE is not set, but CLUSTER_TLS_CERT_FILE is: TLS needs both");
  const pem = (name: string, file: string, kind: RegExp, what: string) => {
    let text: string;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      refuse(`${name} "${file}" cannot be read: ${code === "ENOENT" ? "it does not exist" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "it is a directory" : (code ?? String(err))}`);
    }
    if (!kind.test(text)) refuse(`${name} "${file}" holds no PEM ${what}`);
    return path.resolve(file);
  };
  const certFile = pem("CLUSTER_TLS_CERT_FILE", cert, /-----BEGIN CERTIFICATE-----/, "certificate");
  const keyFile = pem("CLUSTER_TLS_KEY_FILE", key, /-----BEGIN [A-Z ]*PRIVATE KEY-----/, "private key");
  // nginx would refuse a pair that does not match with an error of its own: name the variables instead.
  let matching = false;
  try {
    matching = new X509Certificate(fs.readFileSync(certFile)).checkPrivateKey(createPrivateKey(fs.readFileSync(keyFile)));
  } catch (err) {
    refuse(`CLUSTER_TLS_CERT_FILE "${cert}" or CLUSTER_TLS_KEY_FILE "${key}" cannot be parsed: ${(err as Error).message}`);
  }
  if (!matching) refuse(`CLUSTER_TLS_KEY_FILE "${key}" is not the private key of the certificate in CLUSTER_TLS_CERT_FILE "${cert}"`);
  const port = portVar === undefined ? (basePort === 0 ? undefined : 8443) : Number(portVar);
  if (port !== undefined && (!/^[0-9]+$/.test(portVar ?? "8443") || port < 1 || port > 65535)) refuse(`CLUSTER_TLS_PORT must be a port (1-65535), got "${portVar}"`);
  return { certFile, keyFile, ...(port === undefined ? {} : { port }) };
}

async function up(): Promise<void> {
  const nodes = Number(process.env.NODES ?? "3");
  const basePort = Number(process.env.CLUSTER_PORT ?? "8080");
  if (!Number.isInteger(nodes) || nodes < 1) refuse(`NODES must be a positive integer, got "${process.env.NODES}"`);
  if (!Number.isInteger(basePort) || basePort < 0 || basePort > 65000) refuse(`CLUSTER_PORT must be a port, got "${process.env.CLUSTER_PORT}"`);
  const prometheusVar = process.env.CLUSTER_PROMETHEUS?.trim().toLowerCase() || "1";
  const SWITCH: Record<string, boolean> = { "1": true, true: true, yes: true, on: true, "0": false, false: false, no: false, off: false };
  if (!(prometheusVar in SWITCH)) refuse(`CLUSTER_PROMETHEUS must be one of 1, 0, true, false, yes, no, on, off, got "${process.env.CLUSTER_PROMETHEUS}"`);
  const withPrometheus = SWITCH[prometheusVar]!;
  const tls = tlsSettings(basePort);

  // Its nodes share one DATA_DIR, and SQLITE_THREAD=main holds the file for one process alone.
  if (process.env.SQLITE_THREAD?.trim() === "main") refuse("SQLITE_THREAD must be worker (or unset) here, got \"main\": main holds the SQLite file for one node alone, and the local cluster's nodes share it");
  // The launcher sets these per node itself.
  const own = new Set(["PORT", "NODE_ID", "REDIS_URL", "DATA_DIR"]);
  const env: Record<string, string> = {};
  for (const name of CONFIG_VARIABLES) {
    const v = process.env[name];
    if (v !== undefined && !own.has(name)) env[name] = v;
  }

  const shards = Number(process.env.REDIS_SHARDS ?? "0");
  if (!Number.isInteger(shards) || shards < 0 || shards === 2 || shards > 16) refuse(`REDIS_SHARDS must be 0 (one Redis) or 3..16 (a Redis Cluster), got "${process.env.REDIS_SHARDS}"`);
  const adapterVar = process.env.REDIS_ADAPTER?.trim() || "classic";
  if (adapterVar !== "classic" && adapterVar !== "sharded") refuse(`REDIS_ADAPTER must be classic or sharded, got "${process.env.REDIS_ADAPTER}"`);
  const adapter: "classic" | "sharded" = adapterVar;

  fs.mkdirSync(workDir, { recursive: true });
  if (await reachable(socketPath)) {
    console.error(`cluster: a cluster already runs in ${workDir}${fs.existsSync(pidFile) ? ` (launcher pid ${fs.readFileSync(pidFile, "utf8").trim()})` : ""}; stop it first (\`pnpm cluster stop\`) or set CLUSTER_DIR`);
    process.exit(1);
  }

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
    ...(tls ? { tls } : {}),
  });

  let stopping = false;
  const watched = new WeakSet<object>();
  // Reports a node's unexpected exit (a crash, a kill -9 from outside); its own operations' exits are expected.
  const watch = () => {
    for (const n of cluster.nodes) {
      const p = n.proc();
      if (watched.has(p)) continue;
      watched.add(p);
      p.exited.then(({ code, signal }) => {
        if (!stopping && !cluster.operation()) console.log(`${n.nodeId} exited (code ${code}, signal ${signal}); see ${path.join(workDir, "logs", `${n.nodeId}.log`)}; \`pnpm cluster restart ${n.nodeId}\` starts it again`);
      }, () => undefined);
    }
  };
  watch();

  const stamp = () => new Date().toISOString().slice(11, 19);
  /** Runs an operation, printing its progress on the launcher's output and to `log` (a control client). */
  const operate = async (name: string, run: (log: (l: string) => void) => Promise<OperationReport>, log?: (l: string) => void): Promise<OperationReport> => {
    const both = (l: string) => {
      console.log(`${stamp()} ${l}`);
      log?.(l);
    };
    both(`${name}: starting`);
    try {
      const report = await run(both);
      console.log(`${stamp()} ${name}: done in ${(report.durationMs / 1000).toFixed(1)} s; connections now ${formatConnections(report.after)}`);
      return report;
    } catch (err) {
      console.log(`${stamp()} ${name}: failed: ${(err as Error).message}`);
      throw err;
    } finally {
      watch();
    }
  };

  const status = async (): Promise<Status> => {
    const connections = await cluster.connections();
    const nodesNow = await Promise.all(
      cluster.nodes.map(async (n) => {
        const ready = n.running() && (await fetch(`${n.url}/readyz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status === 200, () => false));
        return { nodeId: n.nodeId, url: n.url, pid: n.pid, running: n.running(), ready, connections: connections[n.nodeId] ?? 0 };
      }),
    );
    return { url: cluster.url, launcherPid: process.pid, operation: cluster.operation(), nodes: nodesNow };
  };

  const scale = async (target: number, log: (l: string) => void): Promise<OperationReport> => {
    const t0 = Date.now();
    const before = await cluster.connections();
    while (cluster.nodes.length < target) await cluster.addNode(log);
    while (cluster.nodes.length > target) await cluster.removeNode(undefined, log);
    return { operation: `scale to ${target}`, durationMs: Date.now() - t0, steps: [], before, after: await cluster.connections() };
  };

  const control = await serveControl(socketPath, async (req, log) => {
    const [first, ...rest] = req.args;
    switch (req.command) {
      case "status":
        return status();
      case "restart": {
        const noSurge = req.args.includes("--no-surge");
        const nodeId = req.args.find((a) => !a.startsWith("--"));
        if (nodeId) return operate(`restart ${nodeId}`, (l) => cluster.restartNode(nodeId, l), log);
        return operate("rolling restart", (l) => cluster.rollingRestart({ surge: !noSurge, log: l }), log);
      }
      case "add":
        return operate("add a node", (l) => cluster.addNode(l), log);
      case "remove":
        return operate(`remove ${first ?? "the last node"}`, (l) => cluster.removeNode(first, l), log);
      case "scale": {
        const target = Number(first);
        if (!Number.isInteger(target) || target < 1 || target > 64 || rest.length > 0) throw new Error(`scale takes a number of nodes, 1 to 64, got ${req.args.join(" ") || "nothing"}`);
        return operate(`scale to ${target}`, (l) => scale(target, l), log);
      }
      case "stop":
        setImmediate(() => void stop("stop command"));
        return undefined;
      default:
        throw new Error(`unknown command ${req.command}`);
    }
  });
  fs.writeFileSync(pidFile, `${process.pid}\n`);

  printUp(cluster, withPrometheus);

  /** A signal's operation: printed on the launcher's output; refused while another one runs. */
  const bySignal = (signal: string, name: string, run: (log: (l: string) => void) => Promise<OperationReport>) => {
    if (stopping) return;
    if (cluster.operation()) return void console.log(`${stamp()} ${signal}: ignored, ${cluster.operation()} is running`);
    operate(`${name} (${signal})`, run).catch(() => undefined);
  };
  process.on("SIGHUP", () => bySignal("SIGHUP", "rolling restart", (l) => cluster.rollingRestart({ log: l })));
  process.on("SIGTTIN", () => bySignal("SIGTTIN", "add a node", (l) => cluster.addNode(l)));
  process.on("SIGTTOU", () => bySignal("SIGTTOU", "remove the last node", (l) => cluster.removeNode(undefined, l)));

  async function stop(why: string): Promise<void> {
    if (stopping) return;
    stopping = true;
    console.log(`\n${why}: stopping nginx, draining the nodes, stopping Redis${cluster.prometheusUrl ? " and Prometheus" : ""}`);
    await control.close();
    fs.rmSync(pidFile, { force: true });
    await cluster.stop();
    process.exit(0);
  }
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
}

function printUp(cluster: Cluster, withPrometheus: boolean): void {
  console.log(`
chat cluster up
  load balancer  ${cluster.url}        (web page, /socket.io/, /conversations)
${cluster.tlsUrl ? `  TLS            ${cluster.tlsUrl}       (the same routes: https://, wss://)\n` : ""}${cluster.nodes.map((n) => `  ${n.nodeId.padEnd(13)}  ${n.url}  pid ${n.pid}`).join("\n")}
  redis          ${cluster.redis.url}
${cluster.prometheusUrl ? `  prometheus     ${cluster.prometheusUrl}   (try: sum(chat_connected_sockets) by (node))` : !withPrometheus ? "  prometheus     skipped (CLUSTER_PROMETHEUS=0)" : "  prometheus     not installed (bash scripts/ensure.sh system prometheus)"}
  a token        pnpm token alice
  operations     pnpm cluster restart | add | remove | scale <n> | status   (pnpm cluster help)
Ctrl-C stops everything.`);
}
