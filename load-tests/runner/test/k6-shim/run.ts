/**
 * Runs one k6 script under the shim (./shim.ts) and prints its result as JSON on the last line:
 *   node --experimental-vm-modules --no-warnings run.ts <script.js> [--options-only] [--echo] [--cwd DIR] [-e NAME=value ...]
 * Exit status 0 whatever the script's verdict (that is `exitCode` in the JSON); 2 on bad usage.
 */
import { runScript } from "./shim.ts";

const args = process.argv.slice(2);
const env: Record<string, string> = {};
let script: string | undefined;
let optionsOnly = false;
let echo = false;
let cwd: string | undefined;
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === "-e") {
    const kv = args[++i] ?? "";
    const eq = kv.indexOf("=");
    if (eq <= 0) {
      console.error(`-e needs NAME=value, got ${kv}`);
      process.exit(2);
    }
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  } else if (a === "--options-only") optionsOnly = true;
  else if (a === "--echo") echo = true;
  else if (a === "--cwd") cwd = args[++i];
  else if (!script) script = a;
  else {
    console.error(`unexpected argument ${a}`);
    process.exit(2);
  }
}
if (!script) {
  console.error("usage: run.ts <script.js> [--options-only] [--echo] [--cwd DIR] [-e NAME=value ...]");
  process.exit(2);
}
const result = await runScript(script, { env, optionsOnly, echo, cwd });
process.stdout.write("\n" + JSON.stringify(result) + "\n");
// Sockets or timers a script left behind must not keep the process alive.
process.exit(0);
