/**
 * Runs the Vitest suite (test/*.spec.ts: the hooks in jsdom against a real node) inside the
 * workspace's `node --test` run, printing Vitest's summary, and fails when Vitest fails or ran
 * nothing. Also builds the package with Vite, as `pnpm pack` does.
 */
import { it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const here = path.resolve(import.meta.dirname, "..");

it("passes its Vitest suite", () => {
  const r = spawnSync(process.execPath, [path.join(here, "node_modules/vitest/vitest.mjs"), "run", "--reporter=default"], {
    cwd: here,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" },
    timeout: 300_000,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  console.log(out.split("\n").filter((l) => /✓|×|Test Files|Tests|FAIL/.test(l)).join("\n"));
  assert.equal(r.status, 0, `vitest failed:\n${out.slice(-6000)}`);
  const summary = /Tests\s+(\d+) passed/.exec(out);
  assert.ok(summary && Number(summary[1]) >= 3, `vitest ran the hooks' tests (${summary?.[0] ?? "no summary"})`);
  assert.doesNotMatch(out, /skipped|todo/, "nothing skipped");
});

it("builds with Vite into ESM, CommonJS and declarations, React left to the app", () => {
  const r = spawnSync(process.execPath, ["build.ts"], { cwd: here, encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  const esm = fs.readFileSync(path.join(here, "dist/index.js"), "utf8");
  assert.match(esm, /from "react"/);
  assert.doesNotMatch(esm, /react\.production|__SECRET_INTERNALS|ReactCurrentDispatcher/, "React itself is not bundled");
  for (const f of ["index.cjs", "index.d.ts", "types/hooks.d.ts"]) assert.ok(fs.existsSync(path.join(here, "dist", f)), f);
  assert.match(fs.readFileSync(path.join(here, "dist/types/index.d.ts"), "utf8"), /useConversation/);
});
