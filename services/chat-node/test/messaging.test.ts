import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { api, closeAllSockets, collect, connectUser, emitAck, eventually, mintToken, sleep, startNode, stopAll, waitForEvent, type NodeHandle } from "@chat/test-kit";
import type { Conversation, JoinAck, MessageData, PresenceEvent, SendAck } from "@chat/protocol";
import { createConversation, history, joined } from "./helpers.ts";

describe("messages on one node", () => {
  let node: NodeHandle;
  before(async () => {
    node = await startNode({ RATE_LIMIT_DISABLED: "1" });
  });
  after(async () => {
    closeAllSockets();
    await stopAll();
  });

  it("two users see each other's messages in order, with consecutive seq", async () => {
    const conv = await createConversation(node.url, "alice", ["bob"]);
    const alice = await joined(node.url, "alice", conv.id);
    const bob = await joined(node.url, "bob", conv.id);
    const atAlice = collect<MessageData>(alice, "newMessage");
    const atBob = collect<MessageData>(bob, "newMessage");
    for (let i = 0; i < 10; i++) {
      const from = i % 2 === 0 ? alice : bob;
      const ack = await emitAck<SendAck>(from, "sendMessage", { conversationId: conv.id, message: `m${i}` });
      assert.ok(ack.ok);
      assert.equal(ack.message.seq, i + 1);
    }
    await eventually(() => atAlice.items.length === 10 && atBob.items.length === 10, 5000, "10 messages each");
    for (const got of [atAlice.items, atBob.items]) {
      assert.deepEqual(got.map((m) => m.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      assert.deepEqual(got.map((m) => m.message), Array.from({ length: 10 }, (_, i) => `m${i}`));
      assert.deepEqual(got.map((m) => m.senderId), Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? "alice" : "bob")));
    }
    const m = atBob.items[0]!;
    assert.match(m.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(m.conversationId, conv.id);
    assert.equal(new Set(atBob.items.map((x) => x.id)).size, 10, "ids are unique");
  });

  it("a client written exactly as the seed (no callback, senderId in the payload) gets its own newMessage", async () => {
    const conv = await createConversation(node.url, "alice", ["bob"]);
    const seedClient = await connectUser(node.url, "alice");
    seedClient.emit("joinConversation", { conversationId: conv.id });
    const bob = await joined(node.url, "bob", conv.id);
    await sleep(100);
    const own = waitForEvent<MessageData>(seedClient, "newMessage");
    const other = waitForEvent<MessageData>(bob, "newMessage");
    seedClient.emit("sendMessage", { conversationId: conv.id, senderId: "alice", message: "hello from the seed" });
    const [a, b] = await Promise.all([own, other]);
    assert.equal(a.message, "hello from the seed");
    assert.equal(a.id, b.id);
    assert.equal(a.senderId, "alice");
  });

  it("a sender that has not joined the room still gets its confirmation, once", async () => {
    const conv = await createConversation(node.url, "alice", ["bob"]);
    const lone = await connectUser(node.url, "alice");
    const got = collect<MessageData>(lone, "newMessage");
    const ack = await emitAck<SendAck>(lone, "sendMessage", { conversationId: conv.id, message: "x" });
    assert.ok(ack.ok);
    await sleep(200);
    assert.deepEqual(got.items.map((m) => m.id), [ack.message.id]);
  });

  it("a repeated clientMessageId, by socket and then by REST, yields one stored message and one broadcast", async () => {
    const conv = await createConversation(node.url, "alice", ["bob"]);
    const alice = await joined(node.url, "alice", conv.id);
    const bob = await joined(node.url, "bob", conv.id);
    const atBob = collect<MessageData>(bob, "newMessage");
    const payload = { conversationId: conv.id, message: "once", clientMessageId: "cmid-1" };
    const first = await emitAck<SendAck>(alice, "sendMessage", payload);
    const second = await emitAck<SendAck>(alice, "sendMessage", payload);
    const rest = await api(node.url, await mintToken("alice")).post<MessageData>(`/conversations/${conv.id}/messages`, { message: "once", clientMessageId: "cmid-1" });
    assert.ok(first.ok && second.ok);
    assert.equal(second.message.id, first.message.id);
    assert.equal(second.duplicate, true);
    assert.equal(rest.status, 200, "a REST repeat answers 200 with the original");
    assert.equal(rest.body.id, first.message.id);
    assert.equal(rest.body.clientMessageId, "cmid-1");
    await sleep(200);
    assert.equal(atBob.items.length, 1, "one broadcast");
    assert.equal((await history(node.url, "bob", conv.id)).messages.length, 1, "one stored message");
    // The same clientMessageId from another sender is another message.
    const fromBob = await emitAck<SendAck>(bob, "sendMessage", payload);
    assert.ok(fromBob.ok && fromBob.message.id !== first.message.id && fromBob.message.seq === 2);
  });

  it("a REST send is stored and broadcast as newMessage exactly as a socket send", async () => {
    const conv = await createConversation(node.url, "alice", ["bob"]);
    const bob = await joined(node.url, "bob", conv.id);
    const got = waitForEvent<MessageData>(bob, "newMessage");
    const res = await api(node.url, await mintToken("alice")).post<MessageData>(`/conversations/${conv.id}/messages`, { message: "via rest", clientMessageId: "r1" });
    assert.equal(res.status, 201);
    assert.deepEqual(await got, res.body);
    assert.equal(res.body.seq, 1);
  });

  it("a non-member can neither join, read, send nor type", async () => {
    const conv = await createConversation(node.url, "alice", ["bob"]);
    const bob = await joined(node.url, "bob", conv.id);
    const atBob = collect(bob, "newMessage");
    const typingAtBob = collect(bob, "typing");
    const mallory = await connectUser(node.url, "mallory");
    for (const [event, payload] of [
      ["joinConversation", { conversationId: conv.id }],
      ["sendMessage", { conversationId: conv.id, message: "let me in" }],
      ["typing", { conversationId: conv.id }],
      ["stopTyping", { conversationId: conv.id }],
    ] as const) {
      const ack = await emitAck<{ ok: boolean; error?: { code: string } }>(mallory, event, payload);
      assert.deepEqual([ack.ok, ack.error?.code], [false, "FORBIDDEN"], event);
    }
    const token = await mintToken("mallory");
    for (const path of [`/conversations/${conv.id}`, `/conversations/${conv.id}/messages`, `/conversations/${conv.id}/presence`]) {
      assert.equal((await api(node.url, token).get(path)).status, 403, path);
    }
    assert.equal((await api(node.url, token).post(`/conversations/${conv.id}/messages`, { message: "x" })).status, 403);
    await sleep(200);
    assert.deepEqual([atBob.items, typingAtBob.items], [[], []]);
    assert.equal((await history(node.url, "alice", conv.id)).messages.length, 0);
  });

  it("pages history backward with before and forward with after", async () => {
    const conv = await createConversation(node.url, "alice", ["bob"]);
    const token = await mintToken("alice");
    for (let i = 1; i <= 25; i++) {
      const res = await api(node.url, token).post(`/conversations/${conv.id}/messages`, { message: `n${i}` });
      assert.equal(res.status, 201);
    }
    const seqs = (p: { messages: MessageData[] }) => p.messages.map((m) => m.seq);
    const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
    const newest = await history(node.url, "bob", conv.id, "?limit=10");
    assert.deepEqual([seqs(newest), newest.hasMore], [range(16, 25), true]);
    const older = await history(node.url, "bob", conv.id, "?limit=10&before=16");
    assert.deepEqual([seqs(older), older.hasMore], [range(6, 15), true]);
    const oldest = await history(node.url, "bob", conv.id, "?limit=10&before=6");
    assert.deepEqual([seqs(oldest), oldest.hasMore], [range(1, 5), false]);
    const forward = await history(node.url, "bob", conv.id, "?limit=10&after=0");
    assert.deepEqual([seqs(forward), forward.hasMore], [range(1, 10), true]);
    const tail = await history(node.url, "bob", conv.id, "?after=20");
    assert.deepEqual([seqs(tail), tail.hasMore], [range(21, 25), false]);
    const all = await history(node.url, "bob", conv.id);
    assert.deepEqual([seqs(all), all.hasMore], [range(1, 25), false], "default limit 50, ascending");
    const window = await history(node.url, "bob", conv.id, "?after=5&before=9");
    assert.deepEqual(seqs(window), [6, 7, 8]);
  });

  it("catches up on join with sinceSeq", async () => {
    const conv = await createConversation(node.url, "alice", ["bob"]);
    const alice = await joined(node.url, "alice", conv.id);
    for (let i = 1; i <= 8; i++) assert.ok((await emitAck<SendAck>(alice, "sendMessage", { conversationId: conv.id, message: `c${i}` })).ok);
    const bob = await connectUser(node.url, "bob");
    const ack = await emitAck<JoinAck>(bob, "joinConversation", { conversationId: conv.id, sinceSeq: 3 });
    assert.ok(ack.ok);
    assert.equal(ack.lastSeq, 8);
    assert.deepEqual(ack.missed?.map((m) => m.seq), [4, 5, 6, 7, 8]);
    assert.deepEqual(ack.missed?.map((m) => m.message), ["c4", "c5", "c6", "c7", "c8"]);
    const plain = await emitAck<JoinAck>(bob, "joinConversation", { conversationId: conv.id });
    assert.ok(plain.ok && plain.lastSeq === 8 && plain.missed === undefined);
    const live = waitForEvent<MessageData>(bob, "newMessage");
    await emitAck(alice, "sendMessage", { conversationId: conv.id, message: "live" });
    assert.equal((await live).seq, 9);
  });

  it("lists the caller's conversations, newest activity first", async () => {
    const first = await createConversation(node.url, "zoe", ["yan"], "first");
    const second = await createConversation(node.url, "zoe", ["xia"], "second");
    const token = await mintToken("zoe");
    await api(node.url, token).post(`/conversations/${first.id}/messages`, { message: "bump" });
    const list = (await api(node.url, token).get<{ conversations: Conversation[] }>("/conversations")).body.conversations;
    assert.deepEqual(list.map((c) => c.title), ["first", "second"]);
    assert.deepEqual(list[0]!.members.sort(), ["yan", "zoe"]);
    const one = await api(node.url, await mintToken("yan")).get<Conversation>(`/conversations/${first.id}`);
    assert.equal(one.status, 200);
    assert.equal(one.body.lastSeq, 1);
    assert.equal(second.members.includes("zoe"), true, "the caller is always a member");
    // ?limit= keeps the newest-activity ones (default 100, at most 1000).
    const top = await api(node.url, token).get<{ conversations: Conversation[] }>("/conversations?limit=1");
    assert.deepEqual(top.body.conversations.map((c) => c.title), ["first"]);
  });

  it("announces presence on a user's first join and last leave, several tabs counting as one", async () => {
    const conv = await createConversation(node.url, "alice", ["bob"]);
    const alice = await joined(node.url, "alice", conv.id);
    const seen = collect<PresenceEvent>(alice, "presence");
    const tab1 = await joined(node.url, "bob", conv.id);
    const tab2 = await joined(node.url, "bob", conv.id);
    await eventually(() => seen.items.length >= 1, 3000, "online");
    const online = await api(node.url, await mintToken("alice")).get<{ online: string[] }>(`/conversations/${conv.id}/presence`);
    assert.deepEqual(online.body.online, ["alice", "bob"]);
    tab1.disconnect();
    await sleep(200);
    assert.deepEqual(seen.items, [{ conversationId: conv.id, userId: "bob", online: true }], "one tab left: still online");
    await emitAck(tab2, "leaveConversation", { conversationId: conv.id });
    await eventually(() => seen.items.length === 2, 3000, "offline");
    assert.deepEqual(seen.items[1], { conversationId: conv.id, userId: "bob", online: false });
    const after = await api(node.url, await mintToken("alice")).get<{ online: string[] }>(`/conversations/${conv.id}/presence`);
    assert.deepEqual(after.body.online, ["alice"]);
  });
});
