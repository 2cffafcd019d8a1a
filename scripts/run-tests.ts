/**
 * Finds every `*.test.ts` of the workspace and runs them with Node's test runner, printing its
 * summary. Arguments filter files by substring: `node scripts/run-tests.ts typing store`.
 * TEST_CONCURRENCY (default 1) sets how many files run at once: tests start real servers and the
 * machines here have two cores.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const roots = ["packages", "services", "load-tests", "test"];
const files: string[] = [];

function walk(dir: string): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "node_modules" || entry.name.startsWith(".")) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full);
    else if (entry.name.endsWith(".test.ts")) files.push(path.relative(root, full));
  }
}
for (const r of roots) if (fs.existsSync(path.join(root, r))) walk(path.join(root, r));

const filters = process.argv.slice(2);
const chosen = files.sort().filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (chosen.length === 0) {
  console.error(`no test files match ${filters.join(" ")}`);
  process.exit(1);
}
console.log(`running ${chosen.length} test files`);
const result = spawnSync(
  process.execPath,
  [
    "--test",
    `--test-concurrency=${process.env.TEST_CONCURRENCY ?? "1"}`,
    "--test-timeout=180000",
    "--test-reporter=spec",
    ...chosen,
  ],
  { cwd: root, stdio: "inherit" },
);
process.exit(result.status ?? 1);
