import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { api, closeAllSockets, connectUser, emitAck, mintToken, sleep, startNode, stopAll, type NodeHandle } from "@chat/test-kit";
import type { SendAck } from "@chat/protocol";
import { createConversation, joined } from "./helpers.ts";

describe("rate limits and the connection cap", () => {
  let node: NodeHandle;
  before(async () => {
    node = await startNode({
      RATE_SEND_PER_SEC: "5", RATE_SEND_BURST: "5",
      RATE_TYPING_PER_SEC: "2", RATE_TYPING_BURST: "2",
      RATE_REST_WRITE_PER_SEC: "3", RATE_REST_WRITE_BURST: "3",
      MAX_CONNECTIONS: "6",
    });
  });
  after(async () => {
    closeAllSockets();
    await stopAll();
  });

  it("sendMessage answers RATE_LIMITED past the burst, stores nothing for it, and recovers after the window", async () => {
    const conv = await createConversation(node.url, "alice", ["bob"]);
    const alice = await joined(node.url, "alice", conv.id);
    const acks = await Promise.all(Array.from({ length: 8 }, (_, i) => emitAck<SendAck>(alice, "sendMessage", { conversationId: conv.id, message: `r${i}` })));
    const ok = acks.filter((a) => a.ok);
    const limited = acks.filter((a) => !a.ok);
    assert.equal(ok.length, 5);
    assert.equal(limited.length, 3);
    for (const a of limited) {
      assert.ok(!a.ok);
      assert.equal(a.error.code, "RATE_LIMITED");
      assert.ok((a.error.retryAfter ?? 0) >= 1);
    }
    await sleep(1300);
    const later = await emitAck<SendAck>(alice, "sendMessage", { conversationId: conv.id, message: "after the window" });
    assert.ok(later.ok);
    assert.equal(later.message.seq, 6, "the refused sends consumed no seq");
    // Buckets are per user: bob is not limited by alice's burst.
    const bob = await joined(node.url, "bob", conv.id);
    assert.ok((await emitAck<SendAck>(bob, "sendMessage", { conversationId: conv.id, message: "bob" })).ok);
  });

  it("typing has its own bucket", async () => {
    const conv = await createConversation(node.url, "carol", ["dan"]);
    const carol = await joined(node.url, "carol", conv.id);
    const acks = await Promise.all(Array.from({ length: 4 }, () => emitAck<{ ok: boolean; error?: { code: string } }>(carol, "typing", { conversationId: conv.id })));
    assert.deepEqual(acks.map((a) => a.ok), [true, true, false, false]);
    assert.equal(acks[3]!.error?.code, "RATE_LIMITED");
  });

  it("REST writes answer 429 with Retry-After, and recover", async () => {
    const token = await mintToken("erin");
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 5; i++) {
      const res = await api(node.url, token).post<{ error?: { code: string } }>("/conversations", { members: ["fay"] });
      statuses.push(res.status);
      if (res.status === 429) {
        retryAfter = res.headers.get("retry-after");
        assert.equal(res.body.error?.code, "RATE_LIMITED");
      }
    }
    assert.deepEqual(statuses, [201, 201, 201, 429, 429]);
    assert.ok(Number(retryAfter) >= 1);
    await sleep(1100);
    assert.equal((await api(node.url, token).post("/conversations", { members: ["fay"] })).status, 201);
  });

  it("refuses connections past MAX_CONNECTIONS with connect_error UNAVAILABLE, and admits again when one leaves", async () => {
    closeAllSockets();
    await sleep(200);
    const sockets = [];
    for (let i = 0; i < 6; i++) sockets.push(await connectUser(node.url, `u${i}`));
    await assert.rejects(connectUser(node.url, "one-too-many"), (err: Error & { data?: { message?: string } }) => {
      assert.equal(err.message, "UNAVAILABLE");
      assert.match(err.data?.message ?? "", /connection limit/);
      return true;
    });
    sockets[0]!.disconnect();
    await sleep(200);
    const s = await connectUser(node.url, "next");
    assert.ok(s.connected);
  });
});
