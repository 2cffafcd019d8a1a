/**
 * The running launcher's control socket: `<CLUSTER_DIR>/control.sock`, a Unix socket only its user
 * can open (mode 0600). A command is one JSON line `{ command, args }`; the launcher answers with
 * JSON lines, `{ log }` for each progress line and a last `{ done: true, ok, result | error }`.
 * `pnpm cluster restart` and the other commands (cli.ts) are clients of it.
 */
import fs from "node:fs";
import net from "node:net";

export interface ControlRequest {
  command: string;
  args: string[];
}

export type ControlHandler = (req: ControlRequest, log: (line: string) => void) => Promise<unknown>;

interface Reply {
  log?: string;
  done?: boolean;
  ok?: boolean;
  result?: unknown;
  error?: string;
}

/** Listens on `socketPath` (a stale socket file of a dead launcher is removed first). */
export async function serveControl(socketPath: string, handle: ControlHandler): Promise<{ close(): Promise<void> }> {
  if (fs.existsSync(socketPath)) {
    if (await reachable(socketPath)) throw new Error(`a launcher already answers on ${socketPath}`);
    fs.rmSync(socketPath, { force: true });
  }
  const server = net.createServer((conn) => {
    let buffered = "";
    let started = false;
    const send = (r: Reply) => {
      if (!conn.destroyed) conn.write(`${JSON.stringify(r)}\n`);
    };
    conn.on("error", () => undefined);
    conn.on("data", (d: Buffer) => {
      if (started) return;
      buffered += d.toString();
      if (buffered.length > 64 * 1024) return void conn.destroy();
      const nl = buffered.indexOf("\n");
      if (nl < 0) return;
      started = true;
      let req: ControlRequest;
      try {
        const parsed = JSON.parse(buffered.slice(0, nl)) as Partial<ControlRequest>;
        if (typeof parsed.command !== "string" || !Array.isArray(parsed.args) || !parsed.args.every((a) => typeof a === "string")) throw new Error("bad shape");
        req = { command: parsed.command, args: parsed.args };
      } catch {
        send({ done: true, ok: false, error: "malformed request: one JSON line { command, args: string[] } expected" });
        return void conn.end();
      }
      handle(req, (line) => send({ log: line })).then(
        (result) => send({ done: true, ok: true, result }),
        (err: unknown) => send({ done: true, ok: false, error: err instanceof Error ? err.message : String(err) }),
      ).finally(() => conn.end());
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve());
  });
  fs.chmodSync(socketPath, 0o600);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        fs.rmSync(socketPath, { force: true });
      }),
  };
}

/** True when something accepts connections on `socketPath`. */
export function reachable(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(socketPath);
    c.once("connect", () => (c.destroy(), resolve(true)));
    c.once("error", () => resolve(false));
  });
}

export class NoLauncherError extends Error {
  override name = "NoLauncherError";
}

/**
 * Sends one command and resolves with its result; `onLog` gets the progress lines. Rejects with
 * NoLauncherError when no launcher answers on `socketPath`, and with the launcher's error message
 * when the command failed.
 */
export function sendControl(socketPath: string, req: ControlRequest, onLog: (line: string) => void = () => undefined): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const conn = net.connect(socketPath);
    let buffered = "";
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      fn();
    };
    conn.once("connect", () => conn.write(`${JSON.stringify(req)}\n`));
    conn.on("error", (err: NodeJS.ErrnoException) => {
      settle(() =>
        reject(err.code === "ENOENT" || err.code === "ECONNREFUSED" ? new NoLauncherError(`no launcher answers on ${socketPath}`) : err),
      );
    });
    conn.on("data", (d: Buffer) => {
      buffered += d.toString();
      for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let r: Reply;
        try {
          r = JSON.parse(line) as Reply;
        } catch {
          continue;
        }
        if (r.log !== undefined) onLog(r.log);
        if (r.done) settle(() => (r.ok ? resolve(r.result) : reject(new Error(r.error ?? "the command failed"))));
      }
    });
    conn.on("close", () => settle(() => reject(new Error("the launcher closed the connection before answering"))));
  });
}
