/**
 * The local cluster's Redis: one standalone `redis-server`, or a Redis Cluster of `shards` masters
 * (no replicas) made of Debian's `redis-server` in cluster mode and joined with
 * `redis-cli --cluster create`. Both answer the same handle, whose `url` is the REDIS_URL the chat
 * nodes get (`redis://h:p?cluster=1&nodes=h:p2,h:p3` for a cluster, the form the node parses).
 *
 * No persistence: the adapter, presence and typing hold only live state. A cluster shard keeps its
 * `nodes.conf` in its own directory, so stop() then start() brings the same cluster back.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { freePort, startProcess, waitForOutput, type Proc } from "@chat/process-kit";

export interface RedisHandle {
  /** REDIS_URL for the nodes. */
  url: string;
  /** The first (or only) server's port and PID. */
  port: number;
  pid: number;
  /** Every server's port: one, or one per shard. */
  ports: number[];
  /** Stops every server (SIGTERM). */
  stop(): Promise<void>;
  /** Starts whatever is stopped and waits until it serves (for a cluster: `cluster_state:ok` on every shard). */
  start(): Promise<void>;
}

export interface RedisLaunch {
  redisBin: string;
  /** Directory for the servers' working files (one sub-directory per shard). */
  dir: string;
  /** The first server's port; further shards on `morePorts`. */
  port: number;
  /** Ports for shards 2..n (a cluster only). */
  morePorts?: number[];
  /** 0 or 1: one standalone server; 3 or more: a Redis Cluster of that many masters. */
  shards?: number;
  /** Called with every process started (log mirroring). */
  onStart?: (p: Proc, name: string) => void;
}

const COMMON = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];

function redisCli(redisBin: string): string {
  const cli = path.join(path.dirname(redisBin), "redis-cli");
  if (fs.existsSync(cli)) return cli;
  return "redis-cli";
}

function clusterInfo(cli: string, port: number): string {
  try {
    return execFileSync(cli, ["-h", "127.0.0.1", "-p", String(port), "cluster", "info"], { timeout: 2000 }).toString();
  } catch {
    return "";
  }
}

export async function startRedis(o: RedisLaunch): Promise<RedisHandle> {
  const shards = o.shards ?? 0;
  if (shards === 0 || shards === 1) return standalone(o);
  if (!Number.isInteger(shards) || shards < 3 || shards > 16) throw new Error(`Redis Cluster needs 3 to 16 shards, got ${shards}`);
  return cluster(o, shards);
}

async function standalone(o: RedisLaunch): Promise<RedisHandle> {
  fs.mkdirSync(o.dir, { recursive: true });
  let proc: Proc | undefined;
  const handle: RedisHandle = {
    url: `redis://127.0.0.1:${o.port}`,
    port: o.port,
    pid: -1,
    ports: [o.port],
    async start() {
      if (proc && proc.proc.exitCode === null && proc.proc.signalCode === null) return;
      proc = startProcess(o.redisBin, ["--port", String(o.port), ...COMMON, "--dir", o.dir]);
      o.onStart?.(proc, "redis");
      await waitForOutput(proc, (out) => out.includes("Ready to accept connections"), 15_000, "redis-server to start");
      handle.pid = proc.pid;
    },
    async stop() {
      await proc?.stop("SIGTERM", 5000);
    },
  };
  await handle.start();
  return handle;
}

async function cluster(o: RedisLaunch, shards: number): Promise<RedisHandle> {
  const ports = [o.port, ...(o.morePorts ?? [])];
  if (ports.length < shards) throw new Error(`Redis Cluster of ${shards} shards needs ${shards} ports, got ${ports.length}`);
  ports.length = shards;
  // The cluster bus of each shard needs a second port (by default port + 10000, which may be taken).
  const busPorts: number[] = [];
  for (let i = 0; i < shards; i++) busPorts.push(await freePort());
  const cli = redisCli(o.redisBin);
  const procs: (Proc | undefined)[] = new Array(shards).fill(undefined);
  const alive = (p: Proc | undefined) => p !== undefined && p.proc.exitCode === null && p.proc.signalCode === null;
  let created = false;

  const handle: RedisHandle = {
    url: `redis://127.0.0.1:${ports[0]}?cluster=1&nodes=${ports.slice(1).map((p) => `127.0.0.1:${p}`).join(",")}`,
    port: ports[0]!,
    pid: -1,
    ports,
    async start() {
      for (let i = 0; i < shards; i++) {
        if (alive(procs[i])) continue;
        const dir = path.join(o.dir, `shard-${i + 1}`);
        // A fresh cluster each launch: a nodes.conf left by an earlier run names other bus ports.
        if (!created) fs.rmSync(dir, { recursive: true, force: true });
        fs.mkdirSync(dir, { recursive: true });
        const p = startProcess(o.redisBin, [
          "--port", String(ports[i]), ...COMMON, "--dir", dir,
          "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", String(busPorts[i]),
          "--cluster-node-timeout", "2000",
        ]);
        o.onStart?.(p, `redis-shard-${i + 1}`);
        await waitForOutput(p, (out) => out.includes("Ready to accept connections"), 15_000, `redis-server shard ${i + 1} to start`);
        procs[i] = p;
      }
      handle.pid = procs[0]!.pid;
      if (!created) {
        // Hash slots split evenly over the masters; --cluster-yes accepts the plan without a prompt.
        execFileSync(cli, ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes"], {
          timeout: 30_000,
          stdio: "pipe",
        });
        created = true;
      }
      const deadline = Date.now() + 20_000;
      for (;;) {
        const states = ports.map((p) => clusterInfo(cli, p));
        if (states.every((s) => s.includes("cluster_state:ok"))) return;
        if (Date.now() > deadline) throw new Error(`Redis Cluster did not reach cluster_state:ok:\n${states.join("\n")}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      await Promise.all(procs.map((p) => p?.stop("SIGTERM", 5000)));
    },
  };
  await handle.start();
  return handle;
}
