/**
 * The k6 scripts speak the contract's events as plain strings (k6 cannot import the workspace's
 * TypeScript). This test ties them to the protocol package: every event a script emits must be a
 * client event of `@chat/protocol`, every event it listens for a server event, so that a renamed
 * event breaks here rather than in a load test. A fixture proves the check can fail.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { CLIENT_EVENTS, ServerEvent } from "@chat/protocol";

const K6 = path.join(import.meta.dirname, "../../k6");

function scripts(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? scripts(full) : e.name.endsWith(".js") ? [full] : [];
  });
}

/** Event names a script emits (`emitAck(client, "x", ...)`, `emit("x", ...)`) and listens for (`name === "x"`). */
export function eventNames(src: string): { emitted: Set<string>; heard: Set<string> } {
  const emitted = new Set([...src.matchAll(/\bemit(?:Ack)?\(\s*(?:[\w.]+\s*,\s*)?"([A-Za-z]+)"/g)].map((m) => m[1]!));
  const heard = new Set([...src.matchAll(/\bname\s*[!=]==\s*"([A-Za-z]+)"/g)].map((m) => m[1]!));
  return { emitted, heard };
}

function drift(src: string): string[] {
  const { emitted, heard } = eventNames(src);
  const client = new Set<string>(CLIENT_EVENTS);
  const server = new Set<string>(Object.values(ServerEvent));
  return [...[...emitted].filter((e) => !client.has(e)).map((e) => `emits unknown "${e}"`), ...[...heard].filter((e) => !server.has(e)).map((e) => `listens for unknown "${e}"`)];
}

describe("k6 event names against @chat/protocol", () => {
  test("every script emits client events and listens for server events of the protocol", () => {
    const all = { emitted: new Set<string>(), heard: new Set<string>() };
    for (const file of scripts(K6)) {
      const src = fs.readFileSync(file, "utf8");
      assert.deepEqual(drift(src), [], path.relative(K6, file));
      const names = eventNames(src);
      names.emitted.forEach((e) => all.emitted.add(e));
      names.heard.forEach((e) => all.heard.add(e));
    }
    // The check read something: the scenarios use these events today.
    for (const e of ["joinConversation", "sendMessage", "typing", "stopTyping"]) assert.ok(all.emitted.has(e), `no script emits ${e}`);
    assert.ok(all.heard.has("newMessage"), "no script listens for newMessage");
  });

  test("a renamed event is caught", () => {
    assert.deepEqual(drift(`emitAck(c.client, "sendMsg", {}); if (name === "newMsg") {}`), ['emits unknown "sendMsg"', 'listens for unknown "newMsg"']);
  });
});
