/**
 * The node's patches of socket.io, Engine.IO and ws internals (`src/transport/socket/patches/`)
 * were checked against the versions `PATCHED_UPSTREAM` records. An upgrade of any of those packages
 * fails here, loudly, until the patch is re-checked (and its behaviour tests pass) and the record
 * updated. The behaviour itself is held by direct-broadcast.test.ts and slow-consumer.test.ts.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { PATCHED_UPSTREAM } from "../src/transport/socket/patches/index.ts";

const here = path.dirname(new URL(import.meta.url).pathname);
/** Resolves a package as the node's own code does: socket.io's engine.io and Engine.IO's ws are theirs, not ours. */
function installedVersion(name: string): string {
  const fromNode = createRequire(path.join(here, "../src/app.ts"));
  const chain: Record<string, string[]> = { "engine.io": ["socket.io"], ws: ["socket.io", "engine.io"] };
  let req = fromNode;
  for (const parent of chain[name] ?? []) req = createRequire(manifestOf(req, parent));
  return (JSON.parse(fs.readFileSync(manifestOf(req, name), "utf8")) as { version: string }).version;
}
/** The package.json of `name` as `req` resolves it (some packages do not export their manifest). */
function manifestOf(req: NodeJS.Require, name: string): string {
  for (let dir = path.dirname(req.resolve(name)); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, "package.json");
    if (fs.existsSync(file) && (JSON.parse(fs.readFileSync(file, "utf8")) as { name?: string }).name === name) return file;
  }
  throw new Error(`no package.json found for ${name}`);
}

describe("patched upstream versions", () => {
  for (const [patch, packages] of Object.entries(PATCHED_UPSTREAM)) {
    test(`${patch}: checked against the installed versions`, () => {
      for (const [name, version] of Object.entries(packages)) {
        assert.equal(installedVersion(name), version, `${name} moved: re-check the ${patch} patch (src/transport/socket/patches/) and update PATCHED_UPSTREAM`);
      }
    });
  }
});
