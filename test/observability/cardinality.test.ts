/**
 * No metric label carries an unbounded value: a node sees a small run of traffic, then a run ten
 * times larger in users and conversations (with fresh ids, made-up event names, bad payloads);
 * the set of chat_ series must not change, and no label value anywhere may be an id the traffic used.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { closeAllSockets, startNode, stopAll, type NodeHandle } from "@chat/test-kit";
import { settledScrape, valueOf, type Sample } from "./promql.ts";
import { driveTraffic, type TrafficResult } from "./traffic.ts";

/**
 * prom-client default metrics whose label is a Node.js resource or GC kind: a closed set of the
 * runtime's, but which of its members appear depends on what the process happens to hold.
 */
const RUNTIME_LABELLED = new Set(["nodejs_active_handles", "nodejs_active_resources", "nodejs_active_requests"]);
const RUNTIME_PREFIXES = ["nodejs_gc_duration_seconds"];

let node: NodeHandle;
let small: Sample[];
let large: Sample[];
const runs: TrafficResult[] = [];

before(async () => {
  // Rate limits off: the large run sends faster than a person, and every send should be stored.
  node = await startNode({ NODE_ID: "obs-cardinality", RATE_LIMIT_DISABLED: "1" });
  runs.push(await driveTraffic(node.url, { users: 3, conversations: 2, tag: "small" }));
  small = await settledScrape(node.url);
  runs.push(await driveTraffic(node.url, { users: 30, conversations: 20, sendsPerConversation: 3, tag: "large" }));
  large = await settledScrape(node.url);
});

after(async () => {
  closeAllSockets();
  await stopAll();
});

test("the large run stored what it sent (the traffic really happened)", () => {
  const stored = runs.reduce((n, r) => n + r.stored, 0);
  assert.ok(runs[1]!.stored >= 60, `the large run stored only ${runs[1]!.stored} messages`);
  assert.equal(valueOf(large, "chat_messages_stored_total"), stored);
});

test("ten times the users and conversations add no chat_ series", () => {
  const keys = (s: Sample[]) => new Set(s.filter((x) => x.name.startsWith("chat_")).map((x) => x.key));
  const before = keys(small);
  const afterLarge = keys(large);
  const added = [...afterLarge].filter((k) => !before.has(k));
  assert.deepEqual(added, [], "series created by more users or conversations");
  assert.equal(afterLarge.size, before.size);
});

test("the other series stay bounded: runtime-labelled defaults only vary within Node's own names", () => {
  const isRuntime = (s: Sample) => RUNTIME_LABELLED.has(s.name) || RUNTIME_PREFIXES.some((p) => s.name.startsWith(p));
  const others = (s: Sample[]) => new Set(s.filter((x) => !x.name.startsWith("chat_") && !isRuntime(x)).map((x) => x.key));
  const added = [...others(large)].filter((k) => !others(small).has(k));
  assert.deepEqual(added, [], "default metrics gained series with traffic");
  for (const s of large.filter(isRuntime)) {
    for (const [k, v] of Object.entries(s.labels)) {
      if (k !== "node") assert.match(v, /^[A-Za-z_]+$|^[0-9.+Inf]+$/, `${s.key}: label ${k}="${v}" is not a runtime name`);
    }
  }
});

test("no label value is a user, conversation, socket, message or client id, nor an unknown event name", () => {
  const ids = new Set(runs.flatMap((r) => [...r.users, ...r.conversations, ...r.sockets, ...r.messages, ...r.clientMessageIds, ...r.unknownEvents]));
  assert.ok(ids.size > 100, `only ${ids.size} ids collected`);
  const leaks: string[] = [];
  for (const s of large) {
    for (const [k, v] of Object.entries(s.labels)) {
      if (ids.has(v) || v.includes("obs-small") || v.includes("obs-large")) leaks.push(`${s.key} (${k}="${v}")`);
    }
  }
  assert.deepEqual(leaks, [], "label values carrying ids");
  const eventLabels = new Set(large.filter((s) => s.name === "chat_events_received_total").map((s) => s.labels.event));
  assert.deepEqual([...eventLabels].sort(), ["joinConversation", "leaveConversation", "sendMessage", "stopTyping", "typing", "unknown"]);
});
