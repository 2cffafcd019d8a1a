/**
 * Real processes on free loopback ports, each stopped by its PID. Every process started here is
 * registered so that `stopAll()` (called by tests' `after`) can end any a failing test left behind.
 */
import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import fs from "node:fs";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const NODE_MAIN = path.join(REPO_ROOT, "services/chat-node/src/main.ts");
export const TEST_SECRET = "test-secret-0123456789abcdef";

/**
 * The V8 options every chat node runs with, wherever it is started (package.json `start`, the
 * Dockerfile, the cluster launcher, the tests, the benchmark; a test keeps them equal). V8 sizes its
 * young generation from the machine's memory: on a 24 GB host each semi-space may grow to 64 MB,
 * and a connection storm grows it that far and leaves it there, about 15 KB of RSS per idle socket
 * at 5,000 sockets. 32 MB halves that ceiling at no measured cost in throughput or p99; 16 MB saved
 * more but raised p99 near saturation (docs/benchmark.md, "Young generation").
 */
export const CHAT_NODE_OPTIONS = "--max-semi-space-size=32";

/** NODE_OPTIONS for a chat node: the project's options first, so that any the caller adds win. */
export function chatNodeOptions(extra?: string): string {
  return extra ? `${CHAT_NODE_OPTIONS} ${extra}` : CHAT_NODE_OPTIONS;
}

const live = new Set<ChildProcess>();

/** A free TCP port on 127.0.0.1, chosen by the kernel. */
/** Ports this process has handed out: the kernel may offer a just-released port again. */
const givenPorts = new Set<number>();

/**
 * A free loopback port, never one this process handed out before (two servers of one test given
 * the same port would have one of them fail to listen while the other answers for both).
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.unref();
      srv.on("error", reject);
      srv.listen(0, "127.0.0.1", () => {
        const addr = srv.address();
        srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
      });
    });
    if (givenPorts.has(port)) continue;
    givenPorts.add(port);
    return port;
  }
  throw new Error("no free port that was not handed out before");
}

const tempDirs: string[] = [];

function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      /* already gone, or held by something we cannot remove: leave it */
    }
  }
}

/**
 * A fresh temporary directory, removed when this process exits, so that tests and benchmarks leave
 * no databases, logs or sockets behind (a node restarted on the same directory within the process
 * still finds it).
 */
export function tempDir(prefix = "chat-test-"): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  if (tempDirs.length === 0) process.once("exit", removeTempDirs);
  tempDirs.push(dir);
  return dir;
}

export interface Proc {
  proc: ChildProcess;
  pid: number;
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
  /** Sends the signal and waits for the exit; SIGKILL after `graceMs`. Resolves to the exit code (null when killed by a signal). */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns a process, capturing its output, registered for stopAll(). */
export function startProcess(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Proc {
  const proc = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd ?? REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  live.add(proc);
  let out = "";
  const cap = (d: Buffer) => {
    out += d.toString();
    if (out.length > 2_000_000) out = out.slice(-1_000_000);
  };
  proc.stdout?.on("data", cap);
  proc.stderr?.on("data", cap);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on("exit", (code, signal) => {
      live.delete(proc);
      resolve({ code, signal });
    });
  });
  return {
    proc,
    pid: proc.pid ?? -1,
    output: () => out,
    exited,
    async stop(signal = "SIGTERM", graceMs = 15_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
      const { code } = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** True while a process with this PID exists (signal 0 tests for it without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Kills every process this test-kit started that is still alive. */
export async function stopAll(): Promise<void> {
  const procs = [...live];
  for (const p of procs) p.kill("SIGKILL");
  await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once("exit", r)))));
}

/** Resolves once `predicate(output)` holds, or rejects after `timeoutMs` with the output so far. */
export async function waitForOutput(p: Proc, predicate: (out: string) => boolean, timeoutMs = 20_000, what = "output"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate(p.output())) {
    if (p.proc.exitCode !== null || p.proc.signalCode !== null) throw new Error(`process exited before ${what}:\n${p.output().slice(-4000)}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${p.output().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
