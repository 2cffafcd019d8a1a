/**
 * Logs at info are structured and never carry a message body or a token: a node at LOG_LEVEL=info
 * sees recognizable bodies by socket and REST, accepted and refused, and a token by socket and by
 * REST header, accepted and refused; its whole output, read after it exited, contains none of them.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { api, closeAllSockets, connectUser, emitAck, mintToken, startNode, stopAll, type NodeHandle } from "@chat/test-kit";

const BODY = `obs-secret-body-${randomUUID()}`;
const REST_BODY = `obs-secret-rest-${randomUUID()}`;
const BAD_BODY = `obs-secret-bad-${randomUUID()}`;
let node: NodeHandle;
let output = "";
let tokens: string[] = [];
let exitCode: number | null = null;

before(async () => {
  node = await startNode({ LOG_LEVEL: "info", NODE_ID: "obs-logs" });
  const alice = `obs-log-alice-${randomUUID().slice(0, 8)}`;
  const bob = `obs-log-bob-${randomUUID().slice(0, 8)}`;
  const aliceToken = await mintToken(alice);
  const bobToken = await mintToken(bob);
  const expired = await mintToken(alice, { expiresInSec: -60 });
  const forged = await mintToken(alice, { secret: "another-secret-entirely-0123456789" });
  tokens = [aliceToken, bobToken, expired, forged];

  const conv = await api(node.url, aliceToken).post<{ id: string }>("/conversations", { members: [alice, bob] });
  assert.equal(conv.status, 201, JSON.stringify(conv.body));
  const a = await connectUser(node.url, alice, { token: aliceToken });
  const b = await connectUser(node.url, bob, { token: bobToken });
  for (const s of [a, b]) assert.equal((await emitAck<{ ok: boolean }>(s, "joinConversation", { conversationId: conv.body.id })).ok, true);

  const sent = await emitAck<{ ok: boolean }>(a, "sendMessage", { conversationId: conv.body.id, message: BODY });
  assert.equal(sent.ok, true, JSON.stringify(sent));
  const rest = await api(node.url, bobToken).post(`/conversations/${conv.body.id}/messages`, { message: REST_BODY });
  assert.equal(rest.status, 201, JSON.stringify(rest.body));

  // Refusals are where a handler is tempted to log the payload or the credential.
  await emitAck(a, "sendMessage", { conversationId: conv.body.id, message: BAD_BODY, unexpected: true });
  await emitAck(a, "sendMessage", { conversationId: `obs-missing-${randomUUID()}`, message: BAD_BODY });
  await emitAck(a, "sendMessage", { conversationId: conv.body.id, message: BAD_BODY.repeat(80) }).catch(() => undefined);
  await api(node.url, bobToken).post(`/conversations/${conv.body.id}/messages`, { message: BAD_BODY, extra: 1 });
  await api(node.url, expired).get("/conversations");
  await api(node.url, forged).get("/conversations");
  for (const t of [expired, forged]) await connectUser(node.url, alice, { token: t }).then(() => assert.fail("a bad token was accepted"), () => undefined);

  closeAllSockets();
  // Read the output once the process exited: everything it wrote has then been captured.
  exitCode = await node.stop("SIGTERM");
  output = node.output();
});

after(async () => {
  closeAllSockets();
  await stopAll();
});

test("the node logged at info, as JSON lines with its node id", () => {
  assert.equal(exitCode, 0, output.slice(-2000));
  const lines = output.split("\n").filter((l) => l.trim().startsWith("{"));
  assert.ok(lines.length >= 2, `expected JSON log lines, got:\n${output.slice(0, 2000)}`);
  const parsed = lines.map((l) => JSON.parse(l) as { level?: number; nodeId?: string });
  assert.ok(parsed.some((p) => p.nodeId === "obs-logs"), "log lines carry nodeId");
  assert.ok(parsed.every((p) => typeof p.level === "number" && p.level >= 30), "nothing below info is written at LOG_LEVEL=info");
});

test("no message body appears in the logs", () => {
  for (const body of [BODY, REST_BODY, BAD_BODY]) assert.ok(!output.includes(body), `the output contains a message body (${body.slice(0, 20)}…)`);
});

test("no token, nor its signature, appears in the logs", () => {
  for (const t of tokens) {
    const signature = t.split(".")[2]!;
    assert.ok(!output.includes(t), "the output contains a token");
    assert.ok(!output.includes(signature), "the output contains a token's signature");
  }
  assert.ok(!/bearer\s+ey/i.test(output), "the output contains an Authorization header value");
});
