/**
 * The chat core is transport-free (docs/ARCHITECTURE.md): `src/core/` and everything it imports at
 * run time, followed file by file, reach neither Socket.IO, Engine.IO, ws nor Fastify, nor the transports.
 * So both transports call one core, and a third could.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";

const SRC = path.resolve(import.meta.dirname, "../src");
const FORBIDDEN = /^(socket\.io|socket\.io-adapter|@socket\.io\/|engine\.io|ws$|fastify|@fastify\/)/;

/**
 * Every module specifier a file imports or re-exports at run time (static and dynamic); `import
 * type` is erased before the code runs (the broker's types name Socket.IO's adapter option that way).
 */
function specifiers(file: string): string[] {
  const text = fs.readFileSync(file, "utf8");
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s(?!type\s)[^;]*?from\s+"([^"]+)"|import\(\s*"([^"]+)"\s*\)/g)].map((m) => (m[1] ?? m[2])!);
}

/** Files reached from `start` through relative imports, and the packages they import. */
function reach(start: string[]): { files: Set<string>; packages: Map<string, string> } {
  const files = new Set<string>();
  const packages = new Map<string, string>();
  const todo = [...start];
  while (todo.length > 0) {
    const f = todo.pop()!;
    if (files.has(f)) continue;
    files.add(f);
    for (const s of specifiers(f)) {
      if (s.startsWith(".")) todo.push(path.resolve(path.dirname(f), s));
      else packages.set(s, path.relative(SRC, f));
    }
  }
  return { files, packages };
}

describe("boundaries", () => {
  it("the core reaches no transport: neither Socket.IO, Engine.IO, ws, Fastify nor src/transport", () => {
    const core = fs.readdirSync(path.join(SRC, "core")).filter((f) => f.endsWith(".ts")).map((f) => path.join(SRC, "core", f));
    assert.ok(core.length >= 5, `the core's files: ${core.length}`);
    const { files, packages } = reach(core);
    const transports = [...files].map((f) => path.relative(SRC, f)).filter((f) => f.startsWith("transport/"));
    assert.deepEqual(transports, [], "files under src/transport reached from the core");
    const bad = [...packages].filter(([p]) => FORBIDDEN.test(p)).map(([p, from]) => `${p} (from ${from})`);
    assert.deepEqual(bad, [], "transport packages reached from the core");
  });

  it("the check can fail: the transports do reach Socket.IO and Fastify", () => {
    const { packages } = reach([path.join(SRC, "transport/socket/server.ts"), path.join(SRC, "transport/http/conversations.ts")]);
    const names = [...packages.keys()];
    assert.ok(names.includes("socket.io") && names.some((p) => /fastify/.test(p)), `packages: ${names.join(", ")}`);
  });
});
