/** Typing transitions (TYPING_TIMEOUT_MS is 400 ms in these tests, set by the test-kit). */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { api, closeAllSockets, collect, emitAck, mintToken, sleep, startNode, stopAll, eventually, type ChatSocket, type NodeHandle } from "@chat/test-kit";
import type { Conversation, TypingEvent } from "@chat/protocol";
import { createConversation, joined } from "./helpers.ts";

const TIMEOUT = 400;

describe("typing", () => {
  let node: NodeHandle;
  before(async () => {
    node = await startNode({ RATE_LIMIT_DISABLED: "1", TYPING_TIMEOUT_MS: String(TIMEOUT) });
  });
  after(async () => {
    closeAllSockets();
    await stopAll();
  });

  async function room(): Promise<{ conv: Conversation; alice: ChatSocket; bob: ChatSocket; atBob: { items: TypingEvent[] }; atAlice: { items: TypingEvent[] } }> {
    const conv = await createConversation(node.url, "alice", ["bob"]);
    const alice = await joined(node.url, "alice", conv.id);
    const bob = await joined(node.url, "bob", conv.id);
    return { conv, alice, bob, atBob: collect<TypingEvent>(bob, "typing"), atAlice: collect<TypingEvent>(alice, "typing") };
  }
  const states = (items: TypingEvent[]) => items.map((e) => e.isTyping);

  it("broadcasts true once, extends without re-broadcast, then false once after the timeout", async () => {
    const { conv, alice, atBob, atAlice } = await room();
    for (let i = 0; i < 6; i++) {
      assert.ok((await emitAck<{ ok: boolean }>(alice, "typing", { conversationId: conv.id, userId: "alice" })).ok);
      await sleep(TIMEOUT / 4);
    }
    // 6 events over 1.5 timeouts: the window was extended, so no false yet.
    assert.deepEqual(states(atBob.items), [true]);
    await eventually(() => atBob.items.length === 2, TIMEOUT * 5, "the false");
    await sleep(TIMEOUT);
    assert.deepEqual(atBob.items, [
      { conversationId: conv.id, userId: "alice", isTyping: true },
      { conversationId: conv.id, userId: "alice", isTyping: false },
    ]);
    assert.deepEqual(atAlice.items, [], "the typer's socket is not told about itself");
  });

  it("sending a message ends typing at once, with one false", async () => {
    const { conv, alice, atBob } = await room();
    await emitAck(alice, "typing", { conversationId: conv.id });
    await emitAck(alice, "sendMessage", { conversationId: conv.id, message: "done" });
    await eventually(() => atBob.items.length === 2, 1000, "false after send");
    await sleep(TIMEOUT * 2);
    assert.deepEqual(states(atBob.items), [true, false]);
  });

  it("a send ends the typing before it, not the typing of the next message sent right after it", async () => {
    const { conv, alice, bob, atBob } = await room();
    const order: string[] = [];
    bob.on("newMessage", () => order.push("newMessage"));
    bob.on("typing", (e: TypingEvent) => order.push(`typing:${e.isTyping}`));
    // The seed's client: send, then start typing the next message at once (same tick, no waiting for the ack).
    const sent = emitAck<{ ok: boolean }>(alice, "sendMessage", { conversationId: conv.id, message: "first" });
    const typed = emitAck<{ ok: boolean }>(alice, "typing", { conversationId: conv.id });
    assert.ok((await sent).ok);
    assert.ok((await typed).ok);
    await eventually(() => order.includes("newMessage"), 1000, "the message");
    await sleep(TIMEOUT / 2);
    assert.deepEqual(order, ["typing:true", "newMessage"], "still typing: the typing came after the send");
    // It ends on its own timeout, once.
    await eventually(() => atBob.items.length === 2, TIMEOUT * 5, "the false after the timeout");
    await sleep(TIMEOUT);
    assert.deepEqual(states(atBob.items), [true, false]);
  });

  it("a REST send ends the sender's typing too", async () => {
    const { conv, alice, atBob } = await room();
    await emitAck(alice, "typing", { conversationId: conv.id });
    const res = await api(node.url, await mintToken("alice")).post(`/conversations/${conv.id}/messages`, { message: "by rest" });
    assert.equal(res.status, 201);
    await eventually(() => atBob.items.length === 2, 1000, "false after the REST send");
    await sleep(TIMEOUT * 2);
    assert.deepEqual(states(atBob.items), [true, false]);
  });

  it("stopTyping ends it at once", async () => {
    const { conv, alice, atBob } = await room();
    await emitAck(alice, "typing", { conversationId: conv.id });
    await emitAck(alice, "stopTyping", { conversationId: conv.id });
    await eventually(() => atBob.items.length === 2, 1000, "false after stopTyping");
    await sleep(TIMEOUT * 2);
    assert.deepEqual(states(atBob.items), [true, false]);
    const again = await emitAck<{ ok: boolean }>(alice, "stopTyping", { conversationId: conv.id });
    assert.ok(again.ok, "stopTyping when not typing is fine");
    await sleep(100);
    assert.equal(atBob.items.length, 2, "and broadcasts nothing");
  });

  it("leaving the room ends it at once", async () => {
    const { conv, alice, atBob } = await room();
    await emitAck(alice, "typing", { conversationId: conv.id });
    await emitAck(alice, "leaveConversation", { conversationId: conv.id });
    await eventually(() => atBob.items.length === 2, 1000, "false after leave");
    await sleep(TIMEOUT * 2);
    assert.deepEqual(states(atBob.items), [true, false]);
  });

  it("disconnecting ends it at once", async () => {
    const { conv, alice, atBob } = await room();
    await emitAck(alice, "typing", { conversationId: conv.id });
    alice.disconnect();
    await eventually(() => atBob.items.length === 2, 1000, "false after disconnect");
    await sleep(TIMEOUT * 2);
    assert.deepEqual(states(atBob.items), [true, false]);
  });

  it("typing again after the false starts a new transition", async () => {
    const { conv, alice, atBob } = await room();
    await emitAck(alice, "typing", { conversationId: conv.id });
    await emitAck(alice, "stopTyping", { conversationId: conv.id });
    await emitAck(alice, "typing", { conversationId: conv.id });
    await eventually(() => atBob.items.length === 4, TIMEOUT * 5, "second cycle");
    assert.deepEqual(states(atBob.items), [true, false, true, false]);
  });
});
