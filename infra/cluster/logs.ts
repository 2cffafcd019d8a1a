/** Mirrors a process's output into `<logDir>/<name>.log` (appended, so a restarted node keeps one file). */
import fs from "node:fs";
import path from "node:path";
import type { Proc } from "@chat/process-kit";

export function mirror(p: Proc, logDir: string | undefined, name: string): void {
  if (!logDir) return;
  const out = fs.createWriteStream(path.join(logDir, `${name}.log`), { flags: "a" });
  p.proc.stdout?.on("data", (d: Buffer) => out.write(d));
  p.proc.stderr?.on("data", (d: Buffer) => out.write(d));
  p.proc.once("exit", () => out.end());
}
