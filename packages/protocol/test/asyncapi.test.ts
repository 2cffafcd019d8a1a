/**
 * docs/asyncapi.yaml is what packages/protocol/scripts/asyncapi.ts builds from the protocol (stale:
 * fail), and it is a well-formed AsyncAPI 3 document naming every event with its payload.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { parse } from "yaml";
import { CLIENT_EVENTS, ServerEvent } from "../src/events.ts";
import { ASYNCAPI_FILE, renderAsyncApi } from "../scripts/asyncapi.ts";

interface Doc {
  asyncapi: string;
  info: { title: string; version: string };
  channels: Record<string, { address: string; messages: Record<string, { $ref: string }> }>;
  operations: Record<string, { action: string; channel: { $ref: string }; messages: { $ref: string }[]; reply?: { messages: { $ref: string }[] } }>;
  components: { messages: Record<string, { name: string; payload: { type?: string; anyOf?: unknown[]; properties?: Record<string, unknown> } }> };
}

/** Follows a local `#/a/b` reference, and the references it leads to (at most 10 hops). */
function resolve(doc: unknown, ref: string): unknown {
  let target: unknown = { $ref: ref };
  for (let hop = 0; hop < 10 && target && typeof target === "object" && "$ref" in target; hop++) {
    const next = String((target as { $ref: unknown }).$ref);
    assert.ok(next.startsWith("#/"), `local reference: ${next}`);
    target = next
      .slice(2)
      .split("/")
      .reduce<unknown>((node, key) => (node && typeof node === "object" ? (node as Record<string, unknown>)[key] : undefined), doc);
  }
  return target;
}

function refsOf(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const n of node) refsOf(n, out);
  else if (node && typeof node === "object") {
    for (const [k, v] of Object.entries(node)) {
      if (k === "$ref" && typeof v === "string") out.push(v);
      else refsOf(v, out);
    }
  }
  return out;
}

describe("AsyncAPI document", () => {
  const text = fs.readFileSync(ASYNCAPI_FILE, "utf8");
  const doc = parse(text) as Doc;

  it("is up to date with the protocol", () => {
    assert.equal(text, renderAsyncApi(), "docs/asyncapi.yaml is stale: run node packages/protocol/scripts/asyncapi.ts");
  });

  it("is an AsyncAPI 3.0 document whose every reference resolves", () => {
    assert.equal(doc.asyncapi, "3.0.0");
    assert.ok(doc.info.title && doc.info.version);
    assert.equal(doc.channels.socket?.address, "/socket.io/");
    const refs = refsOf(doc);
    assert.ok(refs.length > 20);
    for (const ref of refs) assert.ok(resolve(doc, ref) !== undefined, `${ref} resolves`);
    for (const [id, op] of Object.entries(doc.operations)) {
      assert.ok(["send", "receive"].includes(op.action), `${id}: action`);
      assert.ok(op.messages.length > 0, `${id}: messages`);
      for (const m of op.messages) assert.ok(m.$ref.startsWith(`${op.channel.$ref}/messages/`), `${id}: its messages belong to its channel`);
    }
  });

  it("names every client event with its payload and acknowledgement, and every server event", () => {
    for (const name of CLIENT_EVENTS) {
      const op = doc.operations[name];
      assert.equal(op?.action, "receive", `${name} is received by the node`);
      const message = resolve(doc, op.messages[0]!.$ref) as { name: string; payload: { type: string; properties: Record<string, unknown> } };
      assert.equal(message.name, name);
      assert.equal(message.payload.type, "object");
      assert.ok("conversationId" in message.payload.properties, `${name} names its conversation`);
      const ack = resolve(doc, op.reply!.messages[0]!.$ref) as { payload: { anyOf: unknown[] } };
      assert.equal(ack.payload.anyOf.length, 2, `${name}'s ack is ok or error`);
    }
    const sent = Object.values(doc.operations).filter((o) => o.action === "send");
    const names = sent.map((o) => (resolve(doc, o.messages[0]!.$ref) as { name: string }).name).sort();
    assert.deepEqual(names, Object.values(ServerEvent).sort());
    const newMessage = doc.components.messages.newMessage?.payload;
    assert.deepEqual(Object.keys(newMessage?.properties ?? {}).sort(), ["clientMessageId", "conversationId", "id", "message", "senderId", "seq", "timestamp"]);
  });
});
