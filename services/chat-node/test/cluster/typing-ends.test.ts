/**
 * Typing ends at once, across nodes and devices (CONTRACT.md §4): a send by the user from another
 * node or by REST, the disconnect of a socket that typed without joining (or after leaving), and
 * the close of the last of several tabs. TYPING_TIMEOUT_MS is long here (8 s), so an end that
 * comes at once (within 3 s) cannot be the timeout's.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { api, eventually, mintToken } from "@chat/test-kit";
import type { SendAck } from "@chat/protocol";
import { CLUSTER_ENV, clusterPerSuite, cookieFor, createConversation, type Member } from "./helpers.ts";

const AT_ONCE_MS = 3000;

describe("typing ends at once across two nodes", () => {
  const fx = clusterPerSuite({ nodes: 2, redisAdapter: "classic", env: { ...CLUSTER_ENV, TYPING_TIMEOUT_MS: "8000" } });
  const bobTyping = (watcher: Member, conv: string) => watcher.typing.filter((t) => t.userId === "bob" && t.conversationId === conv).map((t) => t.isTyping);
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

  test("a send from the user's other device, on the other node, ends the typing at once", async () => {
    const conv = await createConversation(fx.cluster.url, "alice", ["alice", "bob"]);
    const alice = await fx.join("alice", conv, "node-1");
    const bobPhone = await fx.join("bob", conv, "node-2");
    const bobLaptop = await fx.join("bob", conv, "node-1");
    await bobPhone.socket.timeout(3000).emitWithAck("typing", { conversationId: conv });
    await eventually(() => bobTyping(alice, conv).length === 1, 5000, "alice to see bob typing");
    const ack = (await bobLaptop.socket.timeout(3000).emitWithAck("sendMessage", { conversationId: conv, message: "from the laptop" })) as SendAck;
    assert.ok(ack.ok);
    await eventually(() => bobTyping(alice, conv).length === 2, AT_ONCE_MS, "alice to see bob stop typing at once");
    await pause(300);
    assert.deepEqual(bobTyping(alice, conv), [true, false], "one true, one false");
  });

  test("a REST send ends the typing the user started on another node", async () => {
    const conv = await createConversation(fx.cluster.url, "alice", ["alice", "bob"]);
    const alice = await fx.join("alice", conv, "node-1");
    const bob = await fx.join("bob", conv, "node-2");
    await bob.socket.timeout(3000).emitWithAck("typing", { conversationId: conv });
    await eventually(() => bobTyping(alice, conv).length === 1, 5000, "alice to see bob typing");
    // Pinned to node 1, where bob has no socket and no typing entry.
    const res = await fetch(`${fx.cluster.url}/conversations/${conv}/messages`, {
      method: "POST",
      headers: { authorization: `Bearer ${await mintToken("bob")}`, "content-type": "application/json", cookie: await cookieFor(fx.cluster.url, "node-1") },
      body: JSON.stringify({ message: "by REST" }),
    });
    assert.equal(res.status, 201);
    await eventually(() => bobTyping(alice, conv).length === 2, AT_ONCE_MS, "alice to see bob stop typing at once");
    assert.deepEqual(bobTyping(alice, conv), [true, false]);
  });

  test("a disconnect ends typing in a conversation the socket never joined, and after leaving it", async () => {
    const conv = await createConversation(fx.cluster.url, "alice", ["alice", "bob"]);
    const other = await createConversation(fx.cluster.url, "bob", ["bob"]);
    const alice = await fx.join("alice", conv, "node-1");
    // Bob's socket on node 2 has joined only his other conversation.
    const bob = await fx.join("bob", other, "node-2");
    await bob.socket.timeout(3000).emitWithAck("typing", { conversationId: conv });
    await eventually(() => bobTyping(alice, conv).length === 1, 5000, "alice to see bob typing");
    bob.close();
    await eventually(() => bobTyping(alice, conv).length === 2, AT_ONCE_MS, "alice to see bob stop typing at once");

    const again = await fx.join("bob", conv, "node-2");
    await again.socket.timeout(3000).emitWithAck("leaveConversation", { conversationId: conv });
    await again.socket.timeout(3000).emitWithAck("typing", { conversationId: conv });
    await eventually(() => bobTyping(alice, conv).length === 3, 5000, "alice to see bob typing after his leave");
    again.close();
    await eventually(() => bobTyping(alice, conv).length === 4, AT_ONCE_MS, "alice to see that typing end at once");
    assert.deepEqual(bobTyping(alice, conv), [true, false, true, false]);
    const answer = await api(fx.cluster.url, await mintToken("alice")).get(`/conversations/${conv}`);
    assert.equal(answer.status, 200, "the node keeps serving");
  });

  test("two tabs: closing the first keeps the typing, closing the last ends it at once", async () => {
    const conv = await createConversation(fx.cluster.url, "alice", ["alice", "bob"]);
    const alice = await fx.join("alice", conv, "node-1");
    const tab1 = await fx.join("bob", conv, "node-1");
    const tab2 = await fx.join("bob", conv, "node-1");
    const tab3 = await fx.join("bob", conv, "node-2");
    await tab1.socket.timeout(3000).emitWithAck("typing", { conversationId: conv });
    await tab2.socket.timeout(3000).emitWithAck("typing", { conversationId: conv });
    await tab3.socket.timeout(3000).emitWithAck("typing", { conversationId: conv });
    await eventually(() => bobTyping(alice, conv).length === 1, 5000, "alice to see bob typing");
    tab1.close();
    await pause(1000);
    assert.deepEqual(bobTyping(alice, conv), [true], "bob still types in his other tabs");
    tab3.close();
    await pause(1000);
    assert.deepEqual(bobTyping(alice, conv), [true], "bob still types in his tab on node 1");
    tab2.close();
    await eventually(() => bobTyping(alice, conv).length === 2, AT_ONCE_MS, "alice to see bob stop typing when his last tab closes");
    assert.deepEqual(bobTyping(alice, conv), [true, false]);
  });
});
