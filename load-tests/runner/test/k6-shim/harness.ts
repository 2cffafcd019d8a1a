/**
 * Runs a k6 script under the shim (./run.ts, in a child with --experimental-vm-modules) for the
 * tests, and the small moves they share around it.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { ShimResult } from "./shim.ts";

export type { ShimResult };

export const K6_DIR = path.resolve(import.meta.dirname, "../../../k6");
const RUN = path.join(import.meta.dirname, "run.ts");

export function scenarioPath(name: string): string {
  return path.join(K6_DIR, "scenarios", `${name}.js`);
}

/** Runs `script` with `-e` variables `env`; rejects when the child fails or outlives `timeoutMs`. */
export function runK6(script: string, env: Record<string, string>, opts: { cwd?: string; optionsOnly?: boolean; timeoutMs?: number } = {}): Promise<ShimResult> {
  const args = ["--experimental-vm-modules", "--no-warnings", RUN, script];
  if (opts.optionsOnly) args.push("--options-only");
  if (opts.cwd) args.push("--cwd", opts.cwd);
  for (const [k, v] of Object.entries(env)) args.push("-e", `${k}=${v}`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split("\n").at(-1) ?? "";
      if (code !== 0 || !last.startsWith("{")) return reject(new Error(`shim exited ${code ?? signal}: ${err.slice(-3000)}${out.slice(-2000)}`));
      resolve(JSON.parse(last) as ShimResult);
    });
  });
}

/** A readable account of a result, for assertion messages. */
export function explain(r: ShimResult): string {
  const th = r.thresholds.map((t) => `${t.ok ? "ok  " : "FAIL"} ${t.metric} '${t.source}' (${t.samples} samples)`).join("\n");
  return `exit ${r.exitCode}${r.abortedBy ? ` aborted by ${r.abortedBy}` : ""}\n${th}\nerrors: ${r.errors.join("\n")}\nconfig: ${r.configErrors.join("; ")}\nlogs: ${r.logs.slice(0, 30).join("\n")}`;
}

/** The thresholds that failed, as `metric 'expr'`. */
export function failed(r: ShimResult): string[] {
  return r.thresholds.filter((t) => !t.ok).map((t) => `${t.metric} '${t.source}'`);
}

/** Polls `check` every 100 ms until it holds, for at most `timeoutMs`. */
export async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `chat_messages_stored_total` of a node's /metrics (0 when unreachable). */
export async function storedOn(url: string): Promise<number> {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    const m = /^chat_messages_stored_total(?:\{[^}]*\})? (\d+(?:\.\d+)?)/m.exec(text);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Every file in `dir` and its text. */
export function filesIn(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir)) out[f] = fs.readFileSync(path.join(dir, f), "utf8");
  return out;
}
