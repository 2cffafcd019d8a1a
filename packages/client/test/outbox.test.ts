/**
 * The outbox against a real node: a message sent while the node is unreachable, or while it
 * refuses, survives the client's end (a reload, a restart) and is sent once, with its original
 * clientMessageId, by the next client on the same storage when the connection returns.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import type { MessageData } from "@chat/protocol";
import { api, eventually, mintToken, startNode, stopAll, tempDir, type NodeHandle } from "@chat/test-kit";
import { ChatError, MemoryOutboxStorage, type OutboxEvent } from "../src/index.ts";
import { JsonFileOutboxStorage } from "../src/node.ts";
import { startProxy, type TcpProxy } from "./proxy.ts";
import { closeClients, newClient, waitForState } from "./helpers.ts";

/** Alice connected with an outbox in a fresh JSON file, in a new conversation with bob that she joined. */
async function aliceWithFileOutbox(url: string, sendTimeoutMs: number) {
  const file = path.join(tempDir("chat-outbox-"), "outbox.json");
  const first = await newClient(url, "alice", { outbox: new JsonFileOutboxStorage(file), sendTimeoutMs });
  await waitForState(first, "connected");
  const conv = await first.rest.createConversation({ members: ["bob"] });
  await first.join(conv.id);
  return { file, first, conv };
}

describe("client: the outbox", () => {
  let node: NodeHandle;
  let proxy: TcpProxy;

  before(async () => {
    node = await startNode({ RATE_LIMIT_DISABLED: "1", MAX_MESSAGE_LENGTH: "100" });
    proxy = await startProxy(node.port);
  });

  after(async () => {
    closeClients();
    await proxy?.close();
    await stopAll();
  });

  async function stored(conversationId: string): Promise<MessageData[]> {
    const page = await api(node.url, await mintToken("bob")).get<{ messages: MessageData[] }>(`/conversations/${conversationId}/messages`);
    return page.body.messages;
  }

  it("keeps a message sent offline across a restart and sends it once when the node is back", async () => {
    const { file, first, conv } = await aliceWithFileOutbox(proxy.url, 1500);

    proxy.block();
    await waitForState(first, "reconnecting");
    const events: OutboxEvent[] = [];
    first.on("outbox", (e) => events.push(e));
    const failed = await first.send(conv.id, "typed offline").catch((e: unknown) => e);
    assert.ok(failed instanceof ChatError && failed.retryable, `the send gave up for now (${String(failed)})`);
    const [entry] = first.outbox(conv.id);
    assert.equal(entry?.state, "pending", "and stays pending in the outbox");
    assert.deepEqual(events.map((e) => e.state), ["pending"]);
    first.close(); // the page reloads / the process ends

    const second = await newClient(proxy.url, "alice", { outbox: new JsonFileOutboxStorage(file) });
    const sent: OutboxEvent[] = [];
    second.on("outbox", (e) => sent.push(e));
    await second.ready;
    assert.deepEqual(second.outbox().map((e) => e.clientMessageId), [entry.clientMessageId], "the new client found it");
    proxy.unblock();
    await eventually(() => sent.some((e) => e.state === "sent"), 30_000, "the outbox to send it");
    const messages = await stored(conv.id);
    assert.deepEqual(messages.map((m) => [m.message, m.clientMessageId]), [["typed offline", entry.clientMessageId]], "stored once, with its original id");
    assert.equal(second.outbox().length, 0);
    const third = await newClient(node.url, "alice", { outbox: new JsonFileOutboxStorage(file) });
    await third.ready;
    assert.equal(third.outbox().length, 0, "nothing is left in the file");
  });

  it("refuses bad input before sending, and marks what the node refuses failed", async () => {
    const storage = new MemoryOutboxStorage();
    const alice = await newClient(node.url, "alice", { outbox: storage });
    await waitForState(alice, "connected");
    const conv = await alice.rest.createConversation({ members: ["bob"] });
    await alice.join(conv.id);
    // The node's MAX_MESSAGE_LENGTH (100) is learnt from GET /limits after connecting.
    await eventually(async () => (await alice.send(conv.id, "x".repeat(101)).catch((e: ChatError) => e.code)) === "PAYLOAD_TOO_LARGE", 10_000, "the node's limit");
    assert.equal(await alice.send(conv.id, "").catch((e: ChatError) => e.code), "INVALID_PAYLOAD");
    assert.equal(await alice.send("", "hi").catch((e: ChatError) => e.code), "INVALID_PAYLOAD");
    assert.equal(await alice.send("x".repeat(129), "hi").catch((e: ChatError) => e.code), "INVALID_PAYLOAD");
    assert.equal(alice.outbox().length, 0, "nothing refused by the SDK reached the outbox");
    assert.deepEqual(await stored(conv.id), [], "nor the node");

    // An unknown conversation only the node knows: NOT_FOUND, final, kept as failed.
    const unknown = await alice.send("no-such-conversation", "hello?").catch((e: ChatError) => e);
    assert.ok(unknown instanceof ChatError);
    assert.ok(["NOT_FOUND", "FORBIDDEN"].includes(unknown.code), unknown.code);
    const [failed] = alice.outbox();
    assert.equal(failed?.state, "failed");
    assert.equal(failed?.error?.code, unknown.code);
    assert.equal((await storage.load(`${node.url}|alice`))[0]?.state, "failed", "persisted as failed");
    await alice.discard(failed.clientMessageId);
    assert.equal(alice.outbox().length, 0);
    assert.deepEqual(await storage.load(`${node.url}|alice`), []);
  });
});

describe("client: the outbox while the node refuses for now (RATE_LIMITED)", () => {
  let node: NodeHandle;
  before(async () => {
    // One send, then one every 2 s: the second send is refused with retryAfter 2.
    node = await startNode({ RATE_SEND_PER_SEC: "0.5", RATE_SEND_BURST: "1" });
  });
  after(async () => {
    closeClients();
    await stopAll();
  });

  it("keeps a send the node refused across a restart, and sends it once, with its id, when the node accepts", async () => {
    const { file, first, conv } = await aliceWithFileOutbox(node.url, 600);
    const ok = await first.send(conv.id, "first");
    const refused = await first.send(conv.id, "refused for now").catch((e: unknown) => e);
    assert.ok(refused instanceof ChatError && refused.code === "RATE_LIMITED" && refused.retryable, `the node refused it for now (${String(refused)})`);
    const [entry] = first.outbox(conv.id);
    assert.equal(entry?.state, "pending", "kept pending, not failed");
    first.close(); // the page reloads

    const second = await newClient(node.url, "alice", { outbox: new JsonFileOutboxStorage(file) });
    const events: OutboxEvent[] = [];
    second.on("outbox", (e) => events.push(e));
    await second.ready;
    await eventually(() => events.some((e) => e.state === "sent"), 30_000, "the restored entry to be sent");
    const page = await api(node.url, await mintToken("bob")).get<{ messages: MessageData[] }>(`/conversations/${conv.id}/messages`);
    assert.deepEqual(
      page.body.messages.map((m) => [m.message, m.clientMessageId]),
      [["first", ok.clientMessageId], ["refused for now", entry.clientMessageId]],
      "each stored once, the refused one with its original id",
    );
    assert.equal(second.outbox().length, 0);
  });
});
