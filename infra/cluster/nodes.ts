/**
 * One chat node of the local cluster: a child process on a fixed port with a fixed environment,
 * which can be stopped (SIGTERM drains, SIGKILL kills) and started again on the same port. The
 * launcher's operations (operations.ts) and the fault tests drive nodes through this handle.
 */
import { NODE_MAIN, chatNodeOptions, startProcess, type Proc } from "@chat/process-kit";
import { mirror } from "./logs.ts";

export interface ClusterNode {
  url: string;
  port: number;
  /** The PID of the current (or last) process; -1 before the first start. */
  pid: number;
  nodeId: string;
  proc(): Proc;
  /** True while the current process has not exited. */
  running(): boolean;
  /** Signals the node (SIGTERM: drain) and resolves to its exit code (null when killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Starts it again on the same port with the same environment (draining it first when it runs); resolves once it listens. */
  restart(): Promise<void>;
  /** Resolves once `/readyz` answers 200 (store and Redis answer, not draining). */
  waitReady(timeoutMs?: number): Promise<void>;
  /** `chat_connected_sockets` from the node's own /metrics; undefined when it does not answer. */
  connections(): Promise<number | undefined>;
}

export interface NodeSpec {
  nodeId: string;
  port: number;
  /** The node's whole environment (PORT, NODE_ID, REDIS_URL, ... included). */
  env: Record<string, string>;
  logDir?: string;
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

export function createNode(spec: NodeSpec): ClusterNode {
  const { nodeId, port, env } = spec;
  const url = `http://127.0.0.1:${port}`;
  let proc: Proc | undefined;
  const alive = () => proc !== undefined && proc.proc.exitCode === null && proc.proc.signalCode === null;
  const node: ClusterNode = {
    url,
    port,
    pid: -1,
    nodeId,
    proc: () => {
      if (!proc) throw new Error(`${nodeId} was never started`);
      return proc;
    },
    running: alive,
    async restart() {
      if (alive()) await proc!.stop("SIGTERM");
      proc = startProcess(process.execPath, [NODE_MAIN], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env, NODE_OPTIONS: chatNodeOptions(env.NODE_OPTIONS) } });
      mirror(proc, spec.logDir, nodeId);
      node.pid = proc.pid;
      await waitListening(proc, `${url}/healthz`, nodeId);
    },
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      return proc ? proc.stop(signal) : null;
    },
    async waitReady(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let last = "";
      while (Date.now() < deadline) {
        if (!alive()) throw new Error(`${nodeId} exited before it was ready:\n${proc?.output().slice(-2000) ?? ""}`);
        try {
          const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2500) });
          last = `${res.status} ${await res.text()}`;
          if (res.status === 200) return;
        } catch (err) {
          last = String(err);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`${nodeId} was not ready within ${timeoutMs} ms: ${last}`);
    },
    async connections() {
      if (!alive()) return undefined;
      try {
        const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(2000) });
        const m = /^chat_connected_sockets(?:\{[^}]*\})? (\d+)/m.exec(await res.text());
        return m ? Number(m[1]) : undefined;
      } catch {
        return undefined;
      }
    },
  };
  return node;
}
