/**
 * The SDK against a real node: every send carries a clientMessageId and is retried, by socket or by
 * REST, without ever producing a duplicate; typing is throttled and ended.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { MessageData, TypingEvent } from "@chat/protocol";
import { api, collect, connectUser, emitAck, eventually, mintToken, sleep, startNode, stopAll, closeAllSockets, type NodeHandle } from "@chat/test-kit";
import type { FetchLike } from "../src/index.ts";
import { startProxy, type TcpProxy } from "./proxy.ts";
import { closeClients, newClient, record, waitForState } from "./helpers.ts";

describe("client: sends and typing", () => {
  let node: NodeHandle;
  let proxy: TcpProxy;

  before(async () => {
    // A long typing window: an isTyping:false seen here comes from stopTyping or a send, not the timer.
    node = await startNode({ RATE_LIMIT_DISABLED: "1", TYPING_TIMEOUT_MS: "20000" });
    proxy = await startProxy(node.port);
  });

  after(async () => {
    closeClients();
    closeAllSockets();
    await proxy?.close();
    await stopAll();
  });

  /** A conversation of alice and bob, bob's raw socket in its room. */
  async function conversationWithBob(aliceUrl: string, extra: Parameters<typeof newClient>[2] = {}) {
    const alice = await newClient(aliceUrl, "alice", extra);
    await waitForState(alice, "connected");
    const conv = await alice.rest.createConversation({ members: ["bob"] });
    await alice.join(conv.id);
    const bob = await connectUser(node.url, "bob");
    assert.equal((await emitAck<{ ok: boolean }>(bob, "joinConversation", { conversationId: conv.id })).ok, true);
    return { alice, conv, bob, bobMessages: collect<MessageData>(bob, "newMessage") };
  }

  it("sends by REST while the socket is down, and the message reaches the room once", async () => {
    // The socket goes through the proxy; REST goes straight to the node, and is counted.
    const restPosts: string[] = [];
    const direct: FetchLike = (input, init) => {
      if (init?.method === "POST" && input.includes("/messages")) restPosts.push(input);
      return fetch(input.replace(proxy.url, node.url), init);
    };
    const { alice, conv, bobMessages } = await conversationWithBob(proxy.url, { fetch: direct });
    const seen = record(alice);

    proxy.block();
    await waitForState(alice, "reconnecting");
    const sent = await alice.send(conv.id, "through REST");
    assert.equal(restPosts.length, 1, "one REST post");
    assert.ok(sent.clientMessageId, "the SDK gave the send a clientMessageId");
    await eventually(() => bobMessages.items.some((m) => m.id === sent.id), 5000, "bob to receive the REST send");

    proxy.unblock();
    await waitForState(alice, "connected");
    const again = await alice.send(conv.id, "through the socket");
    assert.equal(restPosts.length, 1, "connected again: the socket carries sends");
    await eventually(() => bobMessages.items.some((m) => m.id === again.id), 5000, "bob to receive the socket send");

    assert.deepEqual(
      alice.messages(conv.id).map((m) => m.message),
      ["through REST", "through the socket"],
    );
    assert.equal(new Set(seen.ids()).size, seen.ids().length);
    assert.equal(bobMessages.items.filter((m) => m.id === sent.id).length, 1);
    proxy.unblock();
  });

  it("retries a send whose acknowledgement was lost and gets the original back, stored once", async () => {
    const { alice, conv, bobMessages } = await conversationWithBob(node.url, { ackTimeoutMs: 400 });
    const outgoing: { clientMessageId?: string }[] = [];
    alice.socket.onAnyOutgoing((event, payload: { clientMessageId?: string }) => {
      if (event === "sendMessage") outgoing.push(payload);
    });
    // Fault injection: the first acknowledgement the socket receives is dropped on the floor.
    const socket = alice.socket as unknown as { onack(packet: unknown): void };
    const deliver = socket.onack.bind(alice.socket);
    let dropped = 0;
    socket.onack = (packet) => {
      if (dropped++ === 0) return;
      deliver(packet);
    };

    const sent = await alice.send(conv.id, "ack lost once");
    assert.equal(dropped >= 2, true, "the retry's acknowledgement arrived");
    assert.equal(outgoing.length, 2, "sent twice");
    assert.equal(outgoing[0]?.clientMessageId, outgoing[1]?.clientMessageId, "with one clientMessageId");
    assert.equal(sent.clientMessageId, outgoing[0]?.clientMessageId);

    await eventually(() => bobMessages.items.length === 1, 5000, "bob to receive the message");
    await sleep(300); // proving the repeat broadcast nothing
    assert.equal(bobMessages.items.length, 1);
    assert.equal(bobMessages.items[0]?.id, sent.id);

    // A caller-driven retry with the same clientMessageId, by socket or by REST, yields the original.
    const cmid = sent.clientMessageId ?? "";
    assert.equal((await alice.send(conv.id, "ack lost once", { clientMessageId: cmid })).id, sent.id);
    const viaRest = await alice.rest.postMessage(conv.id, { message: "ack lost once", clientMessageId: cmid });
    assert.equal(viaRest.duplicate, true);
    assert.equal(viaRest.message.id, sent.id);

    const history = await alice.rest.history(conv.id);
    assert.equal(history.messages.length, 1);
    assert.equal(alice.messages(conv.id).length, 1);
  });

  it("keeps the order of sends and fails at once on a refusal", async () => {
    const { alice, conv, bobMessages } = await conversationWithBob(node.url);
    const texts = Array.from({ length: 10 }, (_, i) => `ordered ${i}`);
    const sent = await Promise.all(texts.map((t) => alice.send(conv.id, t)));
    assert.deepEqual(sent.map((m) => m.message), texts);
    assert.deepEqual(sent.map((m) => m.seq), [...sent.map((m) => m.seq)].sort((a, b) => a - b));
    await eventually(() => bobMessages.items.length === 10, 5000, "bob to receive ten");
    assert.deepEqual(bobMessages.items.map((m) => m.message), texts);

    const other = await alice.rest.createConversation({ members: ["carol"] });
    const bobClient = await newClient(node.url, "bob");
    await assert.rejects(bobClient.send(other.id, "not a member"), (err: { code?: string }) => err.code === "FORBIDDEN");
  });

  it("throttles typing, and ends it when the input empties or a message is sent", async () => {
    const { alice, conv, bob } = await conversationWithBob(node.url, { typingIntervalMs: 5000 });
    const out: string[] = [];
    alice.socket.onAnyOutgoing((event) => {
      if (event === "typing" || event === "stopTyping" || event === "sendMessage") out.push(event);
    });
    const typing = collect<TypingEvent>(bob, "typing");

    for (const value of ["h", "he", "hel", "hell", "hello"]) alice.inputChanged(conv.id, value);
    await eventually(() => typing.items.length === 1, 5000, "bob to see alice typing");
    assert.deepEqual(typing.items[0], { conversationId: conv.id, userId: "alice", isTyping: true });
    alice.inputChanged(conv.id, "");
    await eventually(() => typing.items.length === 2, 5000, "bob to see alice stop");
    assert.equal(typing.items[1]?.isTyping, false);

    alice.inputChanged(conv.id, "again");
    await eventually(() => typing.items.length === 3, 5000, "typing again");
    await alice.send(conv.id, "again");
    await eventually(() => typing.items.length === 4, 5000, "the send to end typing");
    assert.equal(typing.items[3]?.isTyping, false);
    assert.deepEqual(out, ["typing", "stopTyping", "typing", "stopTyping", "sendMessage"]);
  });

  it("reports a refused token as offline with UNAUTHORIZED", async () => {
    const { createChatClient } = await import("../src/index.ts");
    const bad = createChatClient({ url: node.url, token: "not-a-jwt", socketOptions: { transports: ["websocket"] } });
    const errors: string[] = [];
    bad.on("error", (e) => errors.push(e.code));
    await waitForState(bad, "offline");
    assert.deepEqual(errors, ["UNAUTHORIZED"]);
    await assert.rejects(bad.rest.listConversations(), (err: { code?: string; status?: number }) => err.code === "UNAUTHORIZED" && err.status === 401);
    bad.close();
  });

  it("pages history, lists conversations and reports presence", async () => {
    const { alice, conv } = await conversationWithBob(node.url, { pageSize: 50 });
    const bobApi = api(node.url, await mintToken("bob"));
    for (let i = 1; i <= 120; i++) await bobApi.post(`/conversations/${conv.id}/messages`, { message: `m${i}` });
    await eventually(() => alice.messages(conv.id).length === 120, 10_000, "120 live messages");

    const fresh = await newClient(node.url, "alice", { pageSize: 50 });
    const joined = await fresh.join(conv.id);
    assert.equal(joined.messages.length, 50);
    assert.equal(joined.messages[0]?.seq, 71);
    assert.equal(joined.hasOlder, true);
    assert.equal((await fresh.loadOlder(conv.id)).length, 50);
    const last = await fresh.loadOlder(conv.id);
    assert.deepEqual([last.length, last[0]?.seq, fresh.hasOlder(conv.id)], [20, 1, false]);
    assert.deepEqual(await fresh.loadOlder(conv.id), []);

    const after = await fresh.rest.history(conv.id, { after: 115 });
    assert.deepEqual(after.messages.map((m) => m.seq), [116, 117, 118, 119, 120]);
    const list = await fresh.rest.listConversations();
    assert.ok(list.some((c) => c.id === conv.id));
    const presence = await fresh.rest.presence(conv.id);
    assert.ok(presence.online.includes("alice") && presence.online.includes("bob"), `online: ${presence.online.join(",")}`);
  });
});
