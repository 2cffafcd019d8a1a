/**
 * Every event and route has its limit, on a real node: joins (catch-ups cost what they return),
 * leaves, stop typing, the handshake, history, presence, conversation creation, dev tokens; the
 * per-user connection cap; and, with two nodes on one Redis, one budget and one cap for a user
 * spread over both, falling back to per-node limits (and saying so) while Redis is down.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { api, closeAllSockets, connectUser, emitAck, eventually, mintToken, sleep, startNode, startRedis, stopAll, tempDir, type NodeHandle, type RedisHandle } from "@chat/test-kit";
import type { JoinAck, SendAck } from "@chat/protocol";
import { createConversation, metricSum } from "./helpers.ts";

type Answer = { ok: boolean; error?: { code: string; retryAfter?: number } };
const codeOf = (a: Answer) => (a.ok ? "ok" : a.error!.code);

/** The connect_error message of a handshake (with its data's message after a colon), or "connected" (the socket is kept open). */
async function refusal(url: string, userId: string): Promise<string> {
  try {
    await connectUser(url, userId);
    return "connected";
  } catch (err) {
    return `${(err as Error).message}: ${(err as { data?: { message?: string } }).data?.message ?? ""}`;
  }
}
const handshake = async (url: string, userId: string) => (await refusal(url, userId)).split(":")[0]!;

describe("a limit on every event and route", () => {
  let node: NodeHandle;
  before(async () => {
    node = await startNode({
      RATE_JOIN_PER_SEC: "0.01", RATE_JOIN_BURST: "5",
      RATE_LEAVE_PER_SEC: "0.01", RATE_LEAVE_BURST: "3",
      RATE_STOP_TYPING_PER_SEC: "0.01", RATE_STOP_TYPING_BURST: "3",
      RATE_HANDSHAKE_PER_SEC: "0.01", RATE_HANDSHAKE_BURST: "3",
      RATE_HISTORY_PER_SEC: "0.01", RATE_HISTORY_BURST: "2",
      RATE_PRESENCE_PER_SEC: "0.01", RATE_PRESENCE_BURST: "2",
      RATE_CONVERSATION_CREATE_PER_SEC: "0.01", RATE_CONVERSATION_CREATE_BURST: "3",
      RATE_TOKEN_PER_SEC: "0.01", RATE_TOKEN_BURST: "2",
      RATE_SEND_PER_SEC: "1000", RATE_SEND_BURST: "1000",
      RATE_REST_WRITE_PER_SEC: "1000", RATE_REST_WRITE_BURST: "1000",
    });
  });
  after(async () => {
    closeAllSockets();
    await stopAll();
  });

  it("joins are limited, and a join's catch-up costs one more point per 50 messages it returns", async () => {
    const conv = await createConversation(node.url, "jo", ["jim"]);
    const token = await mintToken("jo");
    for (let i = 0; i < 150; i++) assert.equal((await api(node.url, token).post(`/conversations/${conv.id}/messages`, { message: `m${i}` })).status, 201);
    const jo = await connectUser(node.url, "jo");
    const first = await emitAck<JoinAck>(jo, "joinConversation", { conversationId: conv.id, sinceSeq: 0 });
    assert.ok(first.ok && first.missed?.length === 150);
    // 5 points: 1 for the join, 3 for its 150 messages; one join is left.
    const next = [];
    for (let i = 0; i < 3; i++) next.push(codeOf(await emitAck<Answer>(jo, "joinConversation", { conversationId: conv.id })));
    assert.deepEqual(next, ["ok", "RATE_LIMITED", "RATE_LIMITED"]);
    // Without catch-ups a user gets the whole burst.
    const jim = await connectUser(node.url, "jim");
    const plain = [];
    for (let i = 0; i < 6; i++) plain.push(codeOf(await emitAck<Answer>(jim, "joinConversation", { conversationId: conv.id })));
    assert.deepEqual(plain, ["ok", "ok", "ok", "ok", "ok", "RATE_LIMITED"]);
  });

  it("leaveConversation and stopTyping are limited, even for conversations that do not exist", async () => {
    const s = await connectUser(node.url, "flooder");
    const stops = [];
    for (let i = 0; i < 50; i++) stops.push(codeOf(await emitAck<Answer>(s, "stopTyping", { conversationId: `nope-${i}` })));
    assert.deepEqual(stops.slice(0, 4), ["NOT_FOUND", "NOT_FOUND", "NOT_FOUND", "RATE_LIMITED"]);
    assert.equal(stops.filter((c) => c === "RATE_LIMITED").length, 47, "past the burst every one is refused before any lookup");
    const leaves = [];
    for (let i = 0; i < 5; i++) leaves.push(codeOf(await emitAck<Answer>(s, "leaveConversation", { conversationId: `nope-${i}` })));
    assert.deepEqual(leaves, ["NOT_FOUND", "NOT_FOUND", "NOT_FOUND", "RATE_LIMITED", "RATE_LIMITED"]);
    const limited = await emitAck<Answer>(s, "leaveConversation", { conversationId: "nope" });
    assert.ok((limited.error?.retryAfter ?? 0) >= 1, "with retryAfter");
  });

  it("the handshake is limited per user: connect_error RATE_LIMITED", async () => {
    const results = [];
    for (let i = 0; i < 4; i++) {
      const r = await refusal(node.url, "reconnector");
      results.push(r);
      if (r === "connected") closeAllSockets();
    }
    assert.deepEqual(results, ["connected", "connected", "connected", "RATE_LIMITED: too many connections opened, retry later"]);
    assert.equal(await handshake(node.url, "someone-else"), "connected");
  });

  it("history, presence and conversation creation have their own limits; dev tokens are limited per client address", async () => {
    const conv = await createConversation(node.url, "reader", ["other"]);
    const read = api(node.url, await mintToken("reader"));
    const history = [];
    for (let i = 0; i < 3; i++) history.push((await read.get(`/conversations/${conv.id}/messages`)).status);
    assert.deepEqual(history, [200, 200, 429]);
    const presence = [];
    for (let i = 0; i < 3; i++) presence.push((await read.get(`/conversations/${conv.id}/presence`)).status);
    assert.deepEqual(presence, [200, 200, 429]);
    assert.equal((await read.get(`/conversations/${conv.id}`)).status, 200, "other reads keep their own bucket");
    const creator = api(node.url, await mintToken("creator"));
    const created = [];
    for (let i = 0; i < 4; i++) created.push((await creator.post("/conversations", { members: ["x"] })).status);
    assert.deepEqual(created, [201, 201, 201, 429]);
    const tokens = [];
    for (let i = 0; i < 3; i++) tokens.push((await api(node.url).post("/dev/token", { userId: `u${i}` })).status);
    assert.deepEqual(tokens, [200, 200, 429], "a new user id per call does not escape the limit");
  });
});

describe("the per-user connection cap", () => {
  after(async () => {
    closeAllSockets();
    await stopAll();
  });

  it("MAX_CONNECTIONS_PER_USER: one user cannot take the node's connections from the others", async () => {
    const node = await startNode({ MAX_CONNECTIONS_PER_USER: "3", MAX_CONNECTIONS: "6" });
    const a = await connectUser(node.url, "hog");
    await connectUser(node.url, "hog");
    await connectUser(node.url, "hog");
    await assert.rejects(connectUser(node.url, "hog"), (err: Error & { data?: { message?: string } }) => {
      assert.equal(err.message, "RATE_LIMITED");
      assert.match(err.data?.message ?? "", /MAX_CONNECTIONS_PER_USER/);
      return true;
    });
    assert.equal(await handshake(node.url, "polite"), "connected", "others still get in (MAX_CONNECTIONS is 6)");
    a.disconnect();
    await eventually(async () => (await handshake(node.url, "hog")) === "connected", 5000, "a place freed by a disconnect");
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    assert.match(metrics, /^chat_connections_refused_total\{reason="user_cap"[^}]*\} 1$/m, "counted as user_cap");
  });

});

describe("cluster-wide limits on two nodes and one Redis", () => {
  let redis: RedisHandle;
  let a: NodeHandle;
  let b: NodeHandle;
  before(async () => {
    redis = await startRedis();
    // One SQLite file for both, as the local cluster has it: a conversation is seen on either node.
    const env = { DATA_DIR: tempDir("abuse-cluster-"), REDIS_URL: redis.url, RATE_SEND_PER_SEC: "0.01", RATE_SEND_BURST: "6", MAX_CONNECTIONS_PER_USER: "2", RATE_LIMIT_SYNC_MS: "10" };
    a = await startNode(env);
    b = await startNode(env);
  });
  after(async () => {
    closeAllSockets();
    await stopAll();
  });

  it("a user's sockets on both nodes count against one MAX_CONNECTIONS_PER_USER", async () => {
    await connectUser(a.url, "spread");
    await connectUser(b.url, "spread");
    assert.equal(await handshake(a.url, "spread"), "RATE_LIMITED");
    assert.equal(await handshake(b.url, "spread"), "RATE_LIMITED");
    assert.equal(await handshake(b.url, "another"), "connected");
  });

  it("a user sending through both nodes gets one budget, not one per node", async () => {
    const conv = await createConversation(a.url, "sender", ["listener"]);
    const onA = await connectUser(a.url, "sender");
    const onB = await connectUser(b.url, "sender");
    const codes: string[] = [];
    // Alternating nodes, a little apart so that each node settles with Redis in between.
    for (let i = 0; i < 14; i++) {
      codes.push(codeOf(await emitAck<SendAck>(i % 2 ? onB : onA, "sendMessage", { conversationId: conv.id, message: `s${i}` })));
      await sleep(40);
    }
    const ok = codes.filter((c) => c === "ok").length;
    assert.ok(ok >= 6 && ok <= 8, `one burst of 6 (plus at most one per node before it settles), got ${ok}: ${codes.join(" ")}`);
    assert.ok(codes.slice(-4).every((c) => c === "RATE_LIMITED"), codes.join(" "));
    const limits = await api(a.url, await mintToken("sender")).get<{ rateLimits: { clusterWide: boolean } }>("/limits");
    assert.equal(limits.body.rateLimits.clusterWide, true);
  });

  it("with Redis down each node falls back to its own limits and says so in a metric", async () => {
    const conv = await createConversation(a.url, "offline", ["x"]);
    const s = await connectUser(a.url, "offline");
    await redis.stop();
    const codes: string[] = [];
    for (let i = 0; i < 8; i++) {
      codes.push(codeOf(await emitAck<SendAck>(s, "sendMessage", { conversationId: conv.id, message: `o${i}` })));
      await sleep(20);
    }
    assert.deepEqual(codes.slice(0, 7), ["ok", "ok", "ok", "ok", "ok", "ok", "RATE_LIMITED"], "the local bucket still holds");
    await eventually(async () => (await metricSum(a.url, "chat_rate_limit_cluster_wide")) === 0, 10_000, "chat_rate_limit_cluster_wide 0");
    assert.ok((await metricSum(a.url, "chat_rate_limit_fallbacks_total")) > 0);
    // New connections are still admitted, per node.
    assert.equal(await handshake(a.url, "newcomer"), "connected");
  });
});
