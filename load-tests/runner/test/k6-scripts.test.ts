/**
 * k6 is not installable here, so its scripts are kept working by this check: V8 parses each as an
 * ES module and links it against its relative imports and k6's documented module exports
 * (src/check-k6.ts); a broken fixture proves the check can fail.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const checker = path.join(import.meta.dirname, "../src/check-k6.ts");
const check = (dir?: string) =>
  spawnSync(process.execPath, ["--experimental-vm-modules", "--no-warnings", checker, ...(dir ? [dir] : [])], { encoding: "utf8" });

test("every k6 script parses as an ES module and links against k6's modules", () => {
  const r = check();
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const lines = r.stdout.trim().split("\n");
  for (const s of ["chat-fanout", "connect-storm", "typing-storm", "history-reads", "reconnect-storm", "soak", "spike", "mixed"]) {
    assert.ok(lines.includes(`ok   scenarios/${s}.js`), `${s}: ${r.stdout}`);
  }
  for (const l of ["sio", "session", "delivery", "summary", "text-summary", "events", "backoff"]) assert.ok(lines.includes(`ok   lib/${l}.js`), l);
});

test("the check fails on a syntax error, a wrong import name and a missing export", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k6-bad-"));
  fs.mkdirSync(path.join(dir, "scenarios"));
  const put = (name: string, src: string) => fs.writeFileSync(path.join(dir, "scenarios", name), src);
  put("syntax.js", "export const options = {};\nexport default function () { let x = ; }\nexport function handleSummary() {}\n");
  put("import.js", 'import { Trendz } from "k6/metrics";\nexport const options = {};\nexport default function () {}\nexport function handleSummary() {}\n');
  put("exports.js", "export default function () {}\n");
  const r = check(dir);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /FAIL scenarios\/syntax\.js/);
  assert.match(r.stdout, /FAIL scenarios\/import\.js: .*Trendz/);
  assert.match(r.stdout, /FAIL scenarios\/exports\.js: .*options, handleSummary/);
  fs.rmSync(dir, { recursive: true, force: true });
});
