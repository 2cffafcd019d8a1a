/**
 * Hostile input, table-driven: every event and every REST route gets malformed payloads. Each gets
 * the contract's code, nothing is stored (history and conversation lists are unchanged), nothing
 * reaches another socket (an observer in the room receives nothing), and the node keeps serving.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { api, closeAllSockets, collect, connectUser, emitAck, mintToken, sleep, startNode, stopAll, waitForEvent, type ChatSocket, type NodeHandle } from "@chat/test-kit";
import type { Conversation } from "@chat/protocol";
import { createConversation, history, joined } from "./helpers.ts";

const MAX = 100;

describe("hostile input", () => {
  let node: NodeHandle;
  let conv: Conversation;
  let foreign: Conversation;
  let alice: ChatSocket;
  let observer: ChatSocket;
  let seen: { items: unknown[] }[];
  let aliceToken: string;

  before(async () => {
    node = await startNode({ RATE_LIMIT_DISABLED: "1", MAX_MESSAGE_LENGTH: String(MAX), SOCKET_MAX_BUFFER_BYTES: "4096" });
    conv = await createConversation(node.url, "alice", ["bob"]);
    foreign = await createConversation(node.url, "carol", ["dave"]);
    alice = await joined(node.url, "alice", conv.id);
    observer = await joined(node.url, "bob", conv.id);
    seen = ["newMessage", "typing", "presence"].map((e) => collect(observer, e));
    aliceToken = await mintToken("alice");
  });
  after(async () => {
    closeAllSockets();
    await stopAll();
  });

  const C = () => conv.id;
  const proto = (extra: string) => JSON.parse(`{"conversationId":"${C()}","message":"x",${extra}}`) as unknown;
  const notObjects: [string, unknown][] = [
    ["no payload", undefined],
    ["null", null],
    ["a string", "garbage"],
    ["a number", 42],
    ["an array", []],
    ["an array of the right object", [{ conversationId: "x", message: "x" }]],
    ["true", true],
  ];

  const cases: Record<string, [string, () => unknown, string][]> = {
    sendMessage: [
      ...notObjects.map(([n, v]): [string, () => unknown, string] => [n, () => v, "INVALID_PAYLOAD"]),
      ["an empty object", () => ({}), "INVALID_PAYLOAD"],
      ["no message", () => ({ conversationId: C() }), "INVALID_PAYLOAD"],
      ["an empty message", () => ({ conversationId: C(), message: "" }), "INVALID_PAYLOAD"],
      ["a number as message", () => ({ conversationId: C(), message: 42 }), "INVALID_PAYLOAD"],
      ["an object as message", () => ({ conversationId: C(), message: { text: "x" } }), "INVALID_PAYLOAD"],
      ["a number as conversationId", () => ({ conversationId: 42, message: "x" }), "INVALID_PAYLOAD"],
      ["an empty conversationId", () => ({ conversationId: "", message: "x" }), "INVALID_PAYLOAD"],
      ["an over-long conversationId", () => ({ conversationId: "c".repeat(129), message: "x" }), "INVALID_PAYLOAD"],
      ["an extra field", () => ({ conversationId: C(), message: "x", admin: true }), "INVALID_PAYLOAD"],
      ["a __proto__ key", () => proto('"__proto__":{"admin":true}'), "INVALID_PAYLOAD"],
      ["a constructor key", () => proto('"constructor":{"prototype":{}}'), "INVALID_PAYLOAD"],
      ["an empty clientMessageId", () => ({ conversationId: C(), message: "x", clientMessageId: "" }), "INVALID_PAYLOAD"],
      ["an over-long clientMessageId", () => ({ conversationId: C(), message: "x", clientMessageId: "k".repeat(65) }), "INVALID_PAYLOAD"],
      ["a numeric clientMessageId", () => ({ conversationId: C(), message: "x", clientMessageId: 7 }), "INVALID_PAYLOAD"],
      ["a numeric senderId", () => ({ conversationId: C(), message: "x", senderId: 5 }), "INVALID_PAYLOAD"],
      // A lone surrogate cannot be stored as UTF-8: the stored text would differ from the broadcast one.
      ["a lone high surrogate in the message", () => ({ conversationId: C(), message: "a\ud800b" }), "INVALID_PAYLOAD"],
      ["a lone low surrogate ending the message", () => ({ conversationId: C(), message: "x\udc00" }), "INVALID_PAYLOAD"],
      ["a lone surrogate as clientMessageId", () => ({ conversationId: C(), message: "x", clientMessageId: "\ud800" }), "INVALID_PAYLOAD"],
      ["a lone surrogate in the conversationId", () => ({ conversationId: `${C()}\udfff`, message: "x" }), "INVALID_PAYLOAD"],
      ["an over-long message", () => ({ conversationId: C(), message: "m".repeat(MAX + 1) }), "PAYLOAD_TOO_LARGE"],
      ["an unknown conversation", () => ({ conversationId: "no-such-conversation", message: "x" }), "NOT_FOUND"],
      ["a conversation the user is not in", () => ({ conversationId: foreign.id, message: "x" }), "FORBIDDEN"],
      ["somebody else's senderId", () => ({ conversationId: C(), message: "x", senderId: "bob" }), "FORBIDDEN"],
    ],
    joinConversation: [
      ...notObjects.map(([n, v]): [string, () => unknown, string] => [n, () => v, "INVALID_PAYLOAD"]),
      ["an empty object", () => ({}), "INVALID_PAYLOAD"],
      ["a negative sinceSeq", () => ({ conversationId: C(), sinceSeq: -1 }), "INVALID_PAYLOAD"],
      ["a string sinceSeq", () => ({ conversationId: C(), sinceSeq: "1" }), "INVALID_PAYLOAD"],
      ["a fractional sinceSeq", () => ({ conversationId: C(), sinceSeq: 1.5 }), "INVALID_PAYLOAD"],
      ["an extra field", () => ({ conversationId: C(), room: "x" }), "INVALID_PAYLOAD"],
      ["an unknown conversation", () => ({ conversationId: "no-such-conversation" }), "NOT_FOUND"],
      ["a conversation the user is not in", () => ({ conversationId: foreign.id }), "FORBIDDEN"],
    ],
    leaveConversation: [
      ...notObjects.map(([n, v]): [string, () => unknown, string] => [n, () => v, "INVALID_PAYLOAD"]),
      ["an extra field", () => ({ conversationId: C(), x: 1 }), "INVALID_PAYLOAD"],
      ["an unknown conversation", () => ({ conversationId: "no-such-conversation" }), "NOT_FOUND"],
      ["a conversation the user is not in", () => ({ conversationId: foreign.id }), "FORBIDDEN"],
    ],
    typing: [
      ...notObjects.map(([n, v]): [string, () => unknown, string] => [n, () => v, "INVALID_PAYLOAD"]),
      ["a numeric conversationId", () => ({ conversationId: 1 }), "INVALID_PAYLOAD"],
      ["a lone surrogate as userId", () => ({ conversationId: C(), userId: "alice\ud800" }), "INVALID_PAYLOAD"],
      ["an extra field", () => ({ conversationId: C(), isTyping: true }), "INVALID_PAYLOAD"],
      ["somebody else's userId", () => ({ conversationId: C(), userId: "bob" }), "FORBIDDEN"],
      ["an unknown conversation", () => ({ conversationId: "no-such-conversation" }), "NOT_FOUND"],
      ["a conversation the user is not in", () => ({ conversationId: foreign.id }), "FORBIDDEN"],
    ],
    stopTyping: [
      ...notObjects.map(([n, v]): [string, () => unknown, string] => [n, () => v, "INVALID_PAYLOAD"]),
      ["an extra field", () => ({ conversationId: C(), userId: "alice" }), "INVALID_PAYLOAD"],
      ["an unknown conversation", () => ({ conversationId: "no-such-conversation" }), "NOT_FOUND"],
      ["a conversation the user is not in", () => ({ conversationId: foreign.id }), "FORBIDDEN"],
    ],
  };

  for (const [event, rows] of Object.entries(cases)) {
    describe(event, () => {
      for (const [name, payload, code] of rows) {
        it(`${name} → ${code}`, async () => {
          const ack = await emitAck<{ ok: boolean; error?: { code: string; message: string } }>(alice, event, payload());
          assert.equal(ack.ok, false);
          assert.equal(ack.error?.code, code);
          assert.equal(typeof ack.error?.message, "string");
        });
      }
    });
  }

  it("an unknown event with an acknowledgement → INVALID_PAYLOAD", async () => {
    const ack = await emitAck<{ ok: boolean; error?: { code: string } }>(alice, "deleteEverything", { conversationId: C() });
    assert.deepEqual([ack.ok, ack.error?.code], [false, "INVALID_PAYLOAD"]);
  });

  it("a seed-style client with no callback sending garbage gets nothing and stays connected", async () => {
    const raw = alice as unknown as { emit(event: string, ...args: unknown[]): void };
    raw.emit("sendMessage", "garbage");
    raw.emit("typing", 42);
    raw.emit("joinConversation");
    await sleep(200);
    assert.ok(alice.connected);
  });

  describe("REST", () => {
    const post = (path: string, body: unknown, headers?: Record<string, string>) => api(node.url, aliceToken).post<{ error: { code: string } }>(path, body, headers);
    const get = (path: string) => api(node.url, aliceToken).get<{ error: { code: string } }>(path);

    const createCases: [string, unknown, number, string, Record<string, string>?][] = [
      ["malformed JSON", "{not json", 400, "INVALID_PAYLOAD"],
      ["an array", "[]", 400, "INVALID_PAYLOAD"],
      ["a number", "42", 400, "INVALID_PAYLOAD"],
      ["an empty object", {}, 400, "INVALID_PAYLOAD"],
      ["members as a string", { members: "bob" }, 400, "INVALID_PAYLOAD"],
      ["no members", { members: [] }, 400, "INVALID_PAYLOAD"],
      ["an empty member id", { members: [""] }, 400, "INVALID_PAYLOAD"],
      ["a numeric member id", { members: [1] }, 400, "INVALID_PAYLOAD"],
      ["an extra field", { members: ["bob"], owner: "alice" }, 400, "INVALID_PAYLOAD"],
      ["a __proto__ key", '{"members":["bob"],"__proto__":{"x":1}}', 400, "INVALID_PAYLOAD"],
      ["a constructor key", '{"members":["bob"],"constructor":{"prototype":{"x":1}}}', 400, "INVALID_PAYLOAD"],
      ["an over-long title", { members: ["bob"], title: "t".repeat(201) }, 400, "INVALID_PAYLOAD"],
      ["a lone surrogate in the title", { members: ["bob"], title: "t\ud800" }, 400, "INVALID_PAYLOAD"],
      ["a lone surrogate in a member id", { members: ["bob\udc00"] }, 400, "INVALID_PAYLOAD"],
      ["a text/plain body", "members=bob", 400, "INVALID_PAYLOAD", { "content-type": "text/plain" }],
      ["a body over the limit", { members: ["bob"], title: "t".repeat(600_000) }, 413, "PAYLOAD_TOO_LARGE"],
    ];
    for (const [name, body, status, code, headers] of createCases) {
      it(`POST /conversations with ${name} → ${status} ${code}`, async () => {
        const before = (await get("/conversations")).body as unknown as { conversations: unknown[] };
        const res = await post("/conversations", body, headers);
        assert.equal(res.status, status);
        assert.equal(res.body.error.code, code);
        const afterList = (await get("/conversations")).body as unknown as { conversations: unknown[] };
        assert.equal(afterList.conversations.length, before.conversations.length, "nothing stored");
      });
    }

    const msgCases: [string, () => string, unknown, number, string][] = [
      ["malformed JSON", C, "{oops", 400, "INVALID_PAYLOAD"],
      ["no message", C, {}, 400, "INVALID_PAYLOAD"],
      ["an empty message", C, { message: "" }, 400, "INVALID_PAYLOAD"],
      ["a numeric message", C, { message: 1 }, 400, "INVALID_PAYLOAD"],
      ["an extra field", C, { message: "x", seq: 99 }, 400, "INVALID_PAYLOAD"],
      ["a __proto__ key", C, '{"message":"x","__proto__":{"y":1}}', 400, "INVALID_PAYLOAD"],
      ["an over-long clientMessageId", C, { message: "x", clientMessageId: "k".repeat(65) }, 400, "INVALID_PAYLOAD"],
      ["a lone surrogate in the message", C, { message: "a\ud800b" }, 400, "INVALID_PAYLOAD"],
      ["a lone surrogate as clientMessageId", C, { message: "x", clientMessageId: "k\udfff" }, 400, "INVALID_PAYLOAD"],
      ["an over-long message", C, { message: "m".repeat(MAX + 1) }, 413, "PAYLOAD_TOO_LARGE"],
      ["somebody else's senderId", C, { message: "x", senderId: "bob" }, 403, "FORBIDDEN"],
      ["an unknown conversation", () => "no-such-conversation", { message: "x" }, 404, "NOT_FOUND"],
      ["a conversation the user is not in", () => foreign.id, { message: "x" }, 403, "FORBIDDEN"],
      ["an over-long conversation id", () => "c".repeat(129), { message: "x" }, 400, "INVALID_PAYLOAD"],
    ];
    for (const [name, id, body, status, code] of msgCases) {
      it(`POST /conversations/:id/messages with ${name} → ${status} ${code}`, async () => {
        const res = await post(`/conversations/${id()}/messages`, body);
        assert.equal(res.status, status);
        assert.equal(res.body.error.code, code);
      });
    }

    const getCases: [string, () => string, number, string][] = [
      ["limit=0", () => `/conversations/${C()}/messages?limit=0`, 400, "INVALID_PAYLOAD"],
      ["limit=201", () => `/conversations/${C()}/messages?limit=201`, 400, "INVALID_PAYLOAD"],
      ["limit=abc", () => `/conversations/${C()}/messages?limit=abc`, 400, "INVALID_PAYLOAD"],
      ["before=-1", () => `/conversations/${C()}/messages?before=-1`, 400, "INVALID_PAYLOAD"],
      ["an unknown parameter", () => `/conversations/${C()}/messages?sort=desc`, 400, "INVALID_PAYLOAD"],
      ["a repeated parameter", () => `/conversations/${C()}/messages?limit=1&limit=2`, 400, "INVALID_PAYLOAD"],
      ["history of an unknown conversation", () => `/conversations/nope/messages`, 404, "NOT_FOUND"],
      ["history of a foreign conversation", () => `/conversations/${foreign.id}/messages`, 403, "FORBIDDEN"],
      ["an unknown conversation", () => `/conversations/nope`, 404, "NOT_FOUND"],
      ["a foreign conversation", () => `/conversations/${foreign.id}`, 403, "FORBIDDEN"],
      ["presence of a foreign conversation", () => `/conversations/${foreign.id}/presence`, 403, "FORBIDDEN"],
      ["an unknown route", () => `/nothing-here`, 404, "NOT_FOUND"],
      ["a path that does not percent-decode", () => `/conversations/%E0%A4%A`, 400, "INVALID_PAYLOAD"],
      ["a path with a lone surrogate", () => `/conversations/a%ED%A0%80/messages`, 400, "INVALID_PAYLOAD"],
      ["a route path that does not percent-decode", () => `/%ZZ`, 400, "INVALID_PAYLOAD"],
      ["a path parameter over the router's 512 characters", () => `/conversations/${"x".repeat(600)}`, 400, "INVALID_PAYLOAD"],
      ["an empty conversation id", () => `/conversations/`, 400, "INVALID_PAYLOAD"],
      ["the conversation list with limit=0", () => `/conversations?limit=0`, 400, "INVALID_PAYLOAD"],
      ["the conversation list with limit=1001", () => `/conversations?limit=1001`, 400, "INVALID_PAYLOAD"],
      ["the conversation list with an unknown parameter", () => `/conversations?before=x`, 400, "INVALID_PAYLOAD"],
    ];
    for (const [name, path, status, code] of getCases) {
      it(`GET ${name} → ${status} ${code}`, async () => {
        const res = await get(path());
        assert.equal(res.status, status);
        assert.equal(res.body.error.code, code);
      });
    }
    it("a malformed id in the path is named as such, not as a payload", async () => {
      const res = await api(node.url, aliceToken).get<{ error: { code: string; message: string } }>(`/conversations/${"x".repeat(129)}`);
      assert.equal(res.status, 400);
      assert.match(res.body.error.message, /^conversation id in the path: /);
    });
  });

  it("a payload over SOCKET_MAX_BUFFER_BYTES disconnects only that socket", async () => {
    const victim = await joined(node.url, "alice", conv.id);
    const gone = waitForEvent<string>(victim, "disconnect");
    victim.emit("sendMessage", { conversationId: conv.id, message: "x".repeat(10_000) });
    assert.match(await gone, /transport close|transport error/);
    assert.ok(observer.connected, "the other sockets stay");
    assert.ok(alice.connected, "the other sockets stay");
  });

  it("after all of it: nothing stored, nothing broadcast, and the node still serves", async () => {
    assert.deepEqual((await history(node.url, "bob", conv.id)).messages, []);
    for (const s of seen) assert.deepEqual(s.items, [], "the observer received nothing");
    const good = waitForEvent<{ message: string }>(observer, "newMessage");
    const ack = await emitAck<{ ok: boolean }>(alice, "sendMessage", { conversationId: conv.id, message: "still here" });
    assert.equal(ack.ok, true);
    assert.equal((await good).message, "still here");
    const fresh = await connectUser(node.url, "erin");
    assert.ok(fresh.connected);
  });

  it("well-formed text outside the BMP is stored and broadcast exactly as sent (lengths in UTF-16 units)", async () => {
    const text = "😀 é 𝄞 中文 \u0000 \u200d"; // surrogate pairs, combining-free accents, CJK, NUL, ZWJ
    const good = waitForEvent<{ message: string; clientMessageId?: string }>(observer, "newMessage");
    const ack = await emitAck<{ ok: boolean; message: { message: string; seq: number } }>(alice, "sendMessage", { conversationId: conv.id, message: text, clientMessageId: "🔑-1" });
    assert.equal(ack.ok, true);
    assert.equal(ack.message.message, text);
    const got = await good;
    assert.deepEqual([got.message, got.clientMessageId], [text, "🔑-1"]);
    const stored = (await history(node.url, "bob", conv.id)).messages.find((m) => m.seq === ack.message.seq);
    assert.equal(stored?.message, text);
    // MAX_MESSAGE_LENGTH counts UTF-16 code units, as JavaScript's length and HTML's maxlength do: 50 emoji are 100.
    const fits = await emitAck<{ ok: boolean }>(alice, "sendMessage", { conversationId: conv.id, message: "😀".repeat(MAX / 2) });
    assert.equal(fits.ok, true);
    const over = await emitAck<{ ok: boolean; error?: { code: string } }>(alice, "sendMessage", { conversationId: conv.id, message: "😀".repeat(MAX / 2) + "x" });
    assert.equal(over.error?.code, "PAYLOAD_TOO_LARGE");
  });
});
