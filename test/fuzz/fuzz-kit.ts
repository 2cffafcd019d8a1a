/**
 * What the fuzz tests share: the seed (printed, FUZZ_SEED to replay), the hostile values fast-check
 * generates, and the scene: a real node, an attacker who is a member of one conversation, and two
 * honest members who listen in that room and in one the attacker does not belong to.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { api, connectUser, emitAck, mintToken, waitForEvent, type ChatSocket } from "@chat/test-kit";
import type { Conversation, MessageData, MessagePage, SendAck } from "@chat/protocol";

/** The run's seed: FUZZ_SEED when given (to reproduce a failure), otherwise a fresh one, printed. */
export function fuzzSeed(name: string): number {
  const given = process.env.FUZZ_SEED;
  const seed = given !== undefined && /^-?\d+$/.test(given.trim()) ? Number(given.trim()) : (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
  console.log(`${name}: fast-check seed ${seed} (replay with FUZZ_SEED=${seed})`);
  return seed;
}

const nest = (depth: number): unknown => {
  let v: unknown = "deep";
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
  return v;
};

/** JSON values a hostile client sends: anything, and the shapes that broke servers before. */
export function hostileValue(maxString = 6000): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength: 40 }) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 20 }) }, // lone surrogates too
    { weight: 1, arbitrary: fc.integer({ min: 0, max: maxString }).map((n) => "x".repeat(n)) },
    { weight: 1, arbitrary: fc.integer({ min: 50, max: 1000 }).map(nest) },
    { weight: 1, arbitrary: fc.constantFrom<unknown>(null, true, false, 0, -1, 1e308, -0, 2 ** 53 + 1, "", " ", "\u0000", "null", "undefined", "NaN", [], {}) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom('{"__proto__":{"isAdmin":true}}', '{"constructor":{"prototype":{"polluted":1}}}', '{"toString":"x","valueOf":1}', '{"__proto__":null}')
        .map((j) => JSON.parse(j) as unknown),
    },
  );
}

/**
 * Payloads shaped like the contract's, with every field hostile or missing or extra: `ids` are the
 * conversations worth naming (the attacker's, a foreign one), mixed with random ones.
 */
export function hostilePayload(ids: string[], users: string[]): fc.Arbitrary<unknown> {
  const id = fc.oneof(fc.constantFrom(...ids), fc.string({ maxLength: 200 }), hostileValue(300));
  const record = fc.record(
    {
      conversationId: id,
      message: fc.oneof(fc.string({ minLength: 1, maxLength: 30 }), hostileValue(6000)),
      clientMessageId: fc.oneof(fc.string({ maxLength: 70 }), hostileValue(100)),
      senderId: fc.oneof(fc.constantFrom(...users), hostileValue(200)),
      userId: fc.oneof(fc.constantFrom(...users), hostileValue(200)),
      sinceSeq: fc.oneof(fc.integer({ min: -5, max: 1e6 }), fc.double(), hostileValue(20)),
      members: fc.oneof(fc.array(fc.oneof(fc.constantFrom(...users), fc.string({ maxLength: 130 })), { maxLength: 5 }), hostileValue(100)),
      title: hostileValue(300),
      limit: hostileValue(20),
    },
    { requiredKeys: [] },
  );
  const withExtra = fc.tuple(record, fc.dictionary(fc.string({ maxLength: 12 }), hostileValue(50), { maxKeys: 3 })).map(([r, extra]) => ({ ...extra, ...r }));
  return fc.oneof({ weight: 3, arbitrary: record }, { weight: 1, arbitrary: withExtra }, { weight: 1, arbitrary: hostileValue() });
}

/**
 * A payload for `event` shaped as the contract has it, then mutated the way an attacker would: a
 * field swapped for a hostile value, dropped, or joined by an extra one; now and then a valid one,
 * so that the deeper paths (membership, the store) are reached too.
 */
export function eventPayload(event: string, ids: string[], users: string[], maxMessageLength: number): fc.Arbitrary<unknown> {
  const id = fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...ids) }, { weight: 1, arbitrary: hostileValue(300) });
  const user = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...users) }, { weight: 1, arbitrary: hostileValue(200) });
  const shapes: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
    joinConversation: fc.record({ conversationId: id, sinceSeq: fc.oneof(fc.nat(50), fc.integer({ min: -3, max: -1 }), fc.double(), hostileValue(20)) }, { requiredKeys: ["conversationId"] }),
    leaveConversation: fc.record({ conversationId: id }),
    stopTyping: fc.record({ conversationId: id }),
    typing: fc.record({ conversationId: id, userId: user }, { requiredKeys: ["conversationId"] }),
    // POST /conversations/:id/messages
    postMessage: fc.record(
      {
        message: fc.oneof({ weight: 4, arbitrary: fc.string({ minLength: 1, maxLength: 40 }) }, { weight: 1, arbitrary: hostileValue(maxMessageLength * 2) }),
        clientMessageId: fc.oneof(fc.string({ minLength: 1, maxLength: 70 }), hostileValue(100)),
      },
      { requiredKeys: ["message"] },
    ),
    // POST /conversations
    createConversation: fc.record(
      { members: fc.oneof(fc.array(user, { maxLength: 4 }), fc.array(fc.string({ minLength: 1, maxLength: 130 }), { maxLength: 3 }), hostileValue(50)), title: fc.oneof(fc.string({ maxLength: 40 }), hostileValue(300)) },
      { requiredKeys: ["members"] },
    ),
    sendMessage: fc.record(
      {
        conversationId: id,
        message: fc.oneof(
          { weight: 4, arbitrary: fc.string({ minLength: 1, maxLength: 40 }) },
          { weight: 1, arbitrary: fc.integer({ min: maxMessageLength - 1, max: maxMessageLength + 2 }).map((n) => "m".repeat(n)) },
          { weight: 2, arbitrary: hostileValue(maxMessageLength * 2) },
        ),
        clientMessageId: fc.oneof(fc.string({ minLength: 1, maxLength: 70 }), hostileValue(100)),
        senderId: user,
      },
      { requiredKeys: ["conversationId", "message"] },
    ),
  };
  const shaped = Object.hasOwn(shapes, event) ? shapes[event]! : fc.record({ conversationId: id });
  const mutated = fc.tuple(shaped, fc.nat(5), fc.string({ maxLength: 12 }), hostileValue(100)).map(([p, how, key, value]) => {
    const keys = Object.keys(p);
    const k = keys[how % keys.length]!;
    if (how === 0) return { ...p, [key || "extra"]: value }; // an extra field
    if (how === 1) return Object.fromEntries(Object.entries(p).filter(([name]) => name !== k)); // a field missing
    if (how === 2) return { ...p, [k]: value }; // a field hostile
    return p;
  });
  return fc.oneof({ weight: 4, arbitrary: mutated }, { weight: 1, arbitrary: hostilePayload(ids, users) });
}

export interface Scene {
  /** The attacker's conversation (the attacker, alice and bob are members). */
  shared: Conversation;
  /** alice and bob's conversation; the attacker is not a member. */
  foreign: Conversation;
  alice: ChatSocket;
  bob: ChatSocket;
  /** Everything bob received: newMessage, typing, presence. */
  bobSaw: { event: string; payload: { conversationId?: string; userId?: string; senderId?: string } }[];
  /** Ids of the messages alice sent and saw acknowledged. */
  aliceSent: string[];
}

async function created(url: string, owner: string, members: string[]): Promise<Conversation> {
  const res = await api(url, await mintToken(owner)).post<Conversation>("/conversations", { members, title: "fuzz" });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

export async function setScene(url: string, attacker: string): Promise<Scene> {
  const shared = await created(url, attacker, ["alice", "bob"]);
  const foreign = await created(url, "alice", ["bob"]);
  const alice = await connectUser(url, "alice");
  const bob = await connectUser(url, "bob");
  for (const s of [alice, bob]) for (const c of [shared, foreign]) assert.ok((await emitAck<{ ok: boolean }>(s, "joinConversation", { conversationId: c.id })).ok);
  const bobSaw: Scene["bobSaw"] = [];
  for (const event of ["newMessage", "typing", "presence"]) bob.on(event as "newMessage", (payload: unknown) => bobSaw.push({ event, payload: payload as Scene["bobSaw"][number]["payload"] }));
  // One message in the foreign conversation, so that "history unchanged" has something to keep.
  const first = await emitAck<SendAck>(alice, "sendMessage", { conversationId: foreign.id, message: "before the fuzz" });
  assert.ok(first.ok);
  return { shared, foreign, alice, bob, bobSaw, aliceSent: [] };
}

/** alice sends in the shared room and bob receives it: the honest round trip beside the attacker. */
export async function honestRoundTrip(scene: Scene, text: string): Promise<void> {
  const got = waitForEvent<MessageData>(scene.bob, "newMessage", { timeoutMs: 10_000, filter: (m) => m.message === text && m.senderId === "alice" });
  const ack = await emitAck<SendAck>(scene.alice, "sendMessage", { conversationId: scene.shared.id, message: text, clientMessageId: `honest-${scene.aliceSent.length}` }, 10_000);
  assert.ok(ack.ok, `alice's send: ${JSON.stringify(ack)}`);
  scene.aliceSent.push(ack.message.id);
  await got;
}

/** Every message of a conversation, oldest first, as `userId` reads it over REST. */
export async function allMessages(url: string, userId: string, conversationId: string): Promise<MessageData[]> {
  const token = await mintToken(userId);
  const out: MessageData[] = [];
  let after = 0;
  for (let page = 0; page < 100; page++) {
    const res = await api(url, token).get<MessagePage>(`/conversations/${conversationId}/messages?after=${after}&limit=200`);
    assert.equal(res.status, 200);
    out.push(...res.body.messages);
    if (!res.body.hasMore || res.body.messages.length === 0) return out;
    after = res.body.messages.at(-1)!.seq;
  }
  return out;
}

/**
 * The end state every fuzz test checks: the node serves; in the foreign room nothing came from the
 * attacker and its history is the one message; in the shared room what is stored is exactly what
 * bob received, alice's messages all there, and the attacker's only those it saw accepted.
 */
export async function assertNothingLeaked(url: string, scene: Scene, attacker: string, attackerAccepted: Set<string>): Promise<void> {
  assert.equal((await fetch(`${url}/healthz`)).status, 200);
  await honestRoundTrip(scene, "after the fuzz");
  const fromAttacker = scene.bobSaw.filter((e) => e.payload.conversationId === scene.foreign.id && (e.payload.userId === attacker || e.payload.senderId === attacker));
  assert.deepEqual(fromAttacker, [], "nothing of the attacker reached the foreign room");
  const foreignHistory = await allMessages(url, "alice", scene.foreign.id);
  assert.deepEqual(foreignHistory.map((m) => m.message), ["before the fuzz"], "the foreign conversation's history is unchanged");
  const stored = await allMessages(url, "alice", scene.shared.id);
  const storedIds = new Set(stored.map((m) => m.id));
  for (const id of scene.aliceSent) assert.ok(storedIds.has(id), "every honest message is stored");
  const received = new Set(scene.bobSaw.filter((e) => e.event === "newMessage" && e.payload.conversationId === scene.shared.id).map((e) => (e.payload as MessageData).id));
  assert.deepEqual([...storedIds].filter((id) => !received.has(id)), [], "every stored message was broadcast");
  assert.deepEqual([...received].filter((id) => !storedIds.has(id)), [], "nothing was broadcast that is not stored");
  const attackerStored = stored.filter((m) => m.senderId === attacker).map((m) => m.id);
  assert.deepEqual(attackerStored.filter((id) => !attackerAccepted.has(id)), [], "nothing stored from a refused payload");
  assert.ok(stored.every((m) => m.senderId === attacker || m.senderId === "alice"), "no message under another user's name");
}
