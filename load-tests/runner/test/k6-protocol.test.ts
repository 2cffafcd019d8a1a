/**
 * The k6 scripts speak the contract's event names through lib/events.js only, and lib/events.js
 * holds exactly `@chat/protocol`'s: renaming, adding or removing an event in the protocol package
 * fails here until the k6 side follows (k6 cannot import the TypeScript package itself).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { ClientEvent, ServerEvent } from "@chat/protocol";
import * as k6Events from "../../k6/lib/events.js";
import { K6_DIR } from "./k6-shim/harness.ts";

function jsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? jsFiles(path.join(dir, e.name)) : e.name.endsWith(".js") ? [path.join(dir, e.name)] : []));
}

/** The source without comments (newlines kept, so line numbers stay): docs may name events. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, " ")).replace(/(^|[^:"'])\/\/.*$/gm, "$1");
}

test("lib/events.js holds exactly the protocol's client and server event names", () => {
  assert.deepEqual({ ...k6Events.ClientEvent }, { ...ClientEvent });
  assert.deepEqual({ ...k6Events.ServerEvent }, { ...ServerEvent });
});

test("no k6 script spells an event name itself: every one goes through lib/events.js", () => {
  const names = [...new Set([...Object.values(ClientEvent), ...Object.values(ServerEvent)])];
  const literal = new RegExp(`(["'\`])(${names.join("|")})\\1`);
  const offenders: string[] = [];
  const files = jsFiles(K6_DIR).filter((f) => !f.endsWith(path.join("lib", "events.js")));
  assert.ok(files.length > 10);
  for (const f of files) {
    code(fs.readFileSync(f, "utf8"))
      .split("\n")
      .forEach((line, i) => {
        if (literal.test(line)) offenders.push(`${path.relative(K6_DIR, f)}:${i + 1}: ${line.trim()}`);
      });
  }
  assert.deepEqual(offenders, []);
  // The check itself can fail: a literal like the ones it looks for is found.
  assert.ok(literal.test('client.emit("sendMessage", {})'));
});

test("every event the scripts emit or handle is one the protocol defines", () => {
  const used = new Set<string>();
  for (const f of jsFiles(K6_DIR)) for (const [, side, name] of code(fs.readFileSync(f, "utf8")).matchAll(/\b(ClientEvent|ServerEvent)\.(\w+)/g)) used.add(`${side}.${name}`);
  assert.ok(used.size >= 5, [...used].join(", "));
  for (const u of used) {
    const [side, name] = u.split(".") as [string, string];
    const map: Record<string, string> = side === "ClientEvent" ? ClientEvent : ServerEvent;
    assert.ok(name in map, `${u} is not in @chat/protocol`);
  }
});
