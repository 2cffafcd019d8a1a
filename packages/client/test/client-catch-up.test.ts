/**
 * The SDK against a real node: reconnection and catch-up by `seq`, each message announced once.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { api, eventually, mintToken, startNode, stopAll, type NodeHandle } from "@chat/test-kit";
import { createChatClient, type ChatError } from "../src/index.ts";
import { startProxy, type TcpProxy } from "./proxy.ts";
import { closeClients, newClient, range, record, seqs, waitForState } from "./helpers.ts";

describe("client: reconnection and catch-up", () => {
  let node: NodeHandle;
  let proxy: TcpProxy;
  let bob: ReturnType<typeof api>;

  before(async () => {
    node = await startNode({ RATE_LIMIT_DISABLED: "1" });
    proxy = await startProxy(node.port);
    bob = api(node.url, await mintToken("bob"));
  });

  after(async () => {
    closeClients();
    await proxy?.close();
    await stopAll();
  });

  it("re-joins with sinceSeq after losing its connection and pages what it missed past 200, each message once", async () => {
    const alice = await newClient(proxy.url, "alice");
    const seen = record(alice);
    await waitForState(alice, "connected");
    const conv = await alice.rest.createConversation({ members: ["bob"] });
    await alice.join(conv.id);

    assert.equal((await bob.post(`/conversations/${conv.id}/messages`, { message: "before the cut" })).status, 201);
    await eventually(() => alice.messages(conv.id).length === 1, 5000, "the live message");

    proxy.block();
    await waitForState(alice, "reconnecting");
    for (let i = 1; i <= 230; i++) {
      const res = await bob.post(`/conversations/${conv.id}/messages`, { message: `missed ${i}` });
      assert.equal(res.status, 201);
    }
    proxy.unblock();

    await waitForState(alice, "connected");
    await eventually(() => alice.messages(conv.id).length === 231, 15_000, "catch-up of 230 messages");
    assert.deepEqual(seqs(alice.messages(conv.id)), range(1, 231));
    assert.equal(alice.lastSeq(conv.id), 231);
    const ids = seen.ids();
    assert.equal(ids.length, 231, "every message announced exactly once");
    assert.equal(new Set(ids).size, 231);
    assert.ok(seen.announced.some((e) => e.source === "catchup"), "the missed messages came by catch-up");
    assert.deepEqual(seen.states, ["connecting", "connected", "reconnecting", "connected"]);

    // The room was joined again: live delivery goes on.
    await bob.post(`/conversations/${conv.id}/messages`, { message: "after the cut" });
    await eventually(() => alice.messages(conv.id).at(-1)?.message === "after the cut", 5000, "live delivery after re-join");
    assert.equal(alice.messages(conv.id).length, 232);
  });

  it("keeps a conversation whose first history read failed, and loads and joins it on the next connection", async () => {
    const alice = await newClient(proxy.url, "alice");
    await waitForState(alice, "connected");
    const conv = await alice.rest.createConversation({ members: ["bob"] });
    await bob.post(`/conversations/${conv.id}/messages`, { message: "before" });
    proxy.block();
    await waitForState(alice, "reconnecting");
    await assert.rejects(alice.join(conv.id), (err: ChatError) => err.retryable);
    assert.equal(alice.isLoaded(conv.id), false);
    await bob.post(`/conversations/${conv.id}/messages`, { message: "while down" });
    proxy.unblock();
    await waitForState(alice, "connected");
    await eventually(() => alice.messages(conv.id).length === 2, 10_000, "the history, loaded on reconnection");
    assert.equal(alice.isLoaded(conv.id), true);
    // The room was joined too: live messages and the user's own sends arrive.
    await bob.post(`/conversations/${conv.id}/messages`, { message: "live" });
    await alice.send(conv.id, "reply");
    await eventually(() => alice.messages(conv.id).length === 4, 5000, "live message and own reply");
    assert.deepEqual(alice.messages(conv.id).map((m) => m.message), ["before", "while down", "live", "reply"]);
  });

  it("closes a hole in live traffic (a newMessage that never arrived) by fetching after the watermark", async () => {
    const alice = await newClient(node.url, "alice", { gapFillDelayMs: 100 });
    const seen = record(alice);
    await waitForState(alice, "connected");
    const conv = await alice.rest.createConversation({ members: ["bob"] });
    await alice.join(conv.id);
    // Fault injection: the first newMessage the socket receives is lost, as during a broker outage.
    const socket = alice.socket as unknown as { onevent(packet: { data?: unknown[] }): void };
    const deliver = socket.onevent.bind(alice.socket);
    let lost = 0;
    socket.onevent = (packet) => {
      if (packet.data?.[0] === "newMessage" && lost++ === 0) return;
      deliver(packet);
    };
    await bob.post(`/conversations/${conv.id}/messages`, { message: "lost on the way" });
    await bob.post(`/conversations/${conv.id}/messages`, { message: "arrives" });
    await eventually(() => alice.messages(conv.id).length === 2, 5000, "the hole to be filled");
    assert.deepEqual(alice.messages(conv.id).map((m) => m.message), ["lost on the way", "arrives"]);
    assert.equal(lost, 2, "the first was really dropped");
    assert.ok(seen.announced.some((e) => e.source === "catchup" && e.messages[0]?.seq === 1));
    assert.equal(alice.lastSeq(conv.id), 2);
  });

  it("survives a killed node restarted on the same DATA_DIR: nothing acknowledged is lost, nothing doubled", async () => {
    const first = await startNode({ RATE_LIMIT_DISABLED: "1" });
    const alice = await newClient(first.url, "alice", { sendTimeoutMs: 30_000 });
    const seen = record(alice);
    await waitForState(alice, "connected");
    const conv = await alice.rest.createConversation({ members: ["bob"] });
    await alice.join(conv.id);
    const bobThere = api(first.url, await mintToken("bob"));
    for (const text of ["one", "two", "three"]) await bobThere.post(`/conversations/${conv.id}/messages`, { message: text });
    await eventually(() => alice.messages(conv.id).length === 3, 5000, "three live messages");

    await first.stop("SIGKILL");
    await waitForState(alice, "reconnecting");
    // Sent while no node answers: retried (REST, then socket) until one does.
    const pending = alice.send(conv.id, "sent while down");

    const second = await startNode({ DATA_DIR: first.dataDir, PORT: String(first.port), RATE_LIMIT_DISABLED: "1" });
    await bobThere.post(`/conversations/${conv.id}/messages`, { message: "after restart" });
    const mine = await pending;
    assert.equal(mine.senderId, "alice");

    await waitForState(alice, "connected");
    await eventually(() => alice.messages(conv.id).length === 5, 10_000, "all five messages");
    assert.deepEqual(seqs(alice.messages(conv.id)), range(1, 5));
    assert.equal(new Set(seen.ids()).size, seen.ids().length, "no message announced twice");

    const history = await api(second.url, await mintToken("alice")).get<{ messages: { id: string; message: string }[] }>(
      `/conversations/${conv.id}/messages`,
    );
    assert.equal(history.body.messages.filter((m) => m.message === "sent while down").length, 1);
    assert.equal(history.body.messages.length, 5);
    await second.stop("SIGTERM");
  });

  it("holds at most maxMessages, announces what it drops, and pages it back with loadOlder until trim()", async () => {
    const alice = await newClient(node.url, "alice", { maxMessages: 5, pageSize: 5 });
    const trimmed: number[] = [];
    alice.on("trimmed", (e) => trimmed.push(...seqs(e.messages)));
    await waitForState(alice, "connected");
    const conv = await alice.rest.createConversation({ members: ["bob"] });
    await alice.join(conv.id);
    for (let i = 1; i <= 12; i++) assert.equal((await bob.post(`/conversations/${conv.id}/messages`, { message: `m${i}` })).status, 201);
    await eventually(() => alice.lastSeq(conv.id) === 12, 5000, "the live messages");
    assert.deepEqual(seqs(alice.messages(conv.id)), range(8, 12), "the newest five are held");
    assert.deepEqual(trimmed, range(1, 7), "the oldest seven were announced as trimmed");
    assert.equal(alice.hasOlder(conv.id), true);

    // Paging back holds what the reader asked for: the bound rises with it.
    assert.deepEqual(seqs(await alice.loadOlder(conv.id)), range(3, 7));
    assert.deepEqual(seqs(await alice.loadOlder(conv.id)), range(1, 2));
    assert.deepEqual(seqs(alice.messages(conv.id)), range(1, 12));
    assert.equal(alice.hasOlder(conv.id), false);
    await bob.post(`/conversations/${conv.id}/messages`, { message: "m13" });
    await eventually(() => alice.lastSeq(conv.id) === 13, 5000, "one more live message");
    assert.equal(alice.messages(conv.id).length, 13, "nothing dropped while the reader looks back");

    // Back at the newest: trim() restores the bound.
    assert.deepEqual(seqs(alice.trim(conv.id)), range(1, 8));
    assert.deepEqual(seqs(alice.messages(conv.id)), range(9, 13));
    assert.deepEqual(trimmed, [...range(1, 7), ...range(1, 8)]);
    assert.equal(alice.hasOlder(conv.id), true);
  });

  it("refuses maxMessages below pageSize, as it refuses less than 1", async () => {
    const token = await mintToken("alice");
    assert.throws(() => createChatClient({ url: node.url, token, maxMessages: 5 }), /maxMessages must be at least pageSize \(50\)/);
    assert.throws(() => createChatClient({ url: node.url, token, maxMessages: 9, pageSize: 10 }), RangeError);
    assert.throws(() => createChatClient({ url: node.url, token, maxMessages: 0, pageSize: 0 }), /at least 1/);
  });
});
