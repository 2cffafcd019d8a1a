/**
 * Property-based fuzzing of every Socket.IO event against a real node: generated hostile payloads
 * (fast-check) from an attacker who is a member of one conversation, with and without
 * acknowledgements, unknown events, extra arguments, and raw Engine.IO/Socket.IO frames that the
 * client library would never produce. Honest members listen beside it. Properties: every
 * acknowledgement has the contract's shape; the node keeps serving; nothing is stored or broadcast
 * from a refused payload; the honest clients lose nothing. Bounded in runs and time; the seed is
 * printed (FUZZ_SEED replays it).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import WebSocket from "ws";
import { ERROR_CODES, type MessageData } from "@chat/protocol";
import { closeAllSockets, connectUser, mintToken, sleep, startNode, stopAll, type ChatSocket, type NodeHandle } from "@chat/test-kit";
import { assertNothingLeaked, eventPayload, fuzzSeed, honestRoundTrip, hostilePayload, hostileValue, setScene, type Scene } from "./fuzz-kit.ts";

const ATTACKER = "mallory";
const EVENTS = ["joinConversation", "leaveConversation", "sendMessage", "typing", "stopTyping"] as const;

type Ack = { ok: boolean; error?: { code: string; message: string }; message?: MessageData };

function assertAckShape(ack: unknown, what: string): asserts ack is Ack {
  assert.ok(ack && typeof ack === "object" && !Array.isArray(ack), `${what}: an object ack, got ${JSON.stringify(ack)}`);
  const a = ack as Ack;
  assert.equal(typeof a.ok, "boolean", what);
  if (!a.ok) {
    assert.ok(a.error && (ERROR_CODES as readonly string[]).includes(a.error.code), `${what}: a contract code, got ${JSON.stringify(a.error)}`);
    assert.notEqual(a.error.code, "INTERNAL", `${what}: no INTERNAL for bad input`);
    assert.equal(typeof a.error.message, "string");
  }
}

describe("socket fuzzing", () => {
  let node: NodeHandle;
  let scene: Scene;
  let attacker: ChatSocket;
  const accepted = new Set<string>();

  /** The attacker's socket, reconnected when the node closed it (an over-sized or unparsable packet). */
  async function attackerSocket(): Promise<ChatSocket> {
    if (!attacker?.connected) attacker = await connectUser(node.url, ATTACKER);
    return attacker;
  }

  before(async () => {
    node = await startNode({ RATE_LIMIT_DISABLED: "1", MAX_MESSAGE_LENGTH: "1000", SOCKET_MAX_BUFFER_BYTES: "8192" });
    scene = await setScene(node.url, ATTACKER);
  });
  after(async () => {
    closeAllSockets();
    await stopAll();
  });

  it("every event with hostile payloads and an acknowledgement: contract answers, nothing leaks", async () => {
    const ids = [scene.shared.id, scene.foreign.id, "no-such-conversation"];
    const users = [ATTACKER, "alice", "bob"];
    const seed = fuzzSeed("socket events");
    let runs = 0;
    const outcomes = new Map<string, number>();
    const tally = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    const call = fc
      .constantFrom(...EVENTS)
      .chain((event) => fc.tuple(fc.constant(event), eventPayload(event, ids, users, 1000), fc.array(hostileValue(100), { maxLength: 2 })));
    await fc.assert(
      fc.asyncProperty(call, async ([event, payload, extra]) => {
        runs++;
        const s = await attackerSocket();
        let ack: unknown;
        try {
          ack = await s.timeout(5000).emitWithAck(event, payload, ...extra);
        } catch (err) {
          // The node may close a socket that sent an over-sized packet; any other silence is a failure.
          if (!s.connected) return void tally(`${event} socket closed`);
          throw new Error(`${event} got no acknowledgement: ${String(err)}`);
        }
        // With extra arguments the acknowledgement is still the last one; the payload is the first.
        assertAckShape(ack, event);
        tally(`${event} ${ack.ok ? "ok" : ack.error!.code}`);
        if (event === "sendMessage" && ack.ok) {
          assert.ok(ack.message && ack.message.senderId === ATTACKER, "a stored message carries the token's user");
          assert.equal(ack.message.conversationId, scene.shared.id, "only the attacker's own conversation accepts its sends");
          accepted.add(ack.message.id);
        }
        if (runs % 20 === 0) await honestRoundTrip(scene, `honest ${runs}`);
      }),
      { seed, numRuns: 400, interruptAfterTimeLimit: 25_000, markInterruptAsFailure: false },
    );
    console.log(`socket events: ${runs} runs, ${JSON.stringify(Object.fromEntries([...outcomes].sort()))}`);
    assert.ok(runs >= 50, `ran ${runs} cases`);
    await assertNothingLeaked(node.url, scene, ATTACKER, accepted);
  });

  it("events without acknowledgement, unknown events and extra arguments: never stored, never broadcast", async () => {
    // Without an acknowledgement the attacker cannot tell what was accepted, so these all name a
    // conversation it may not write to (or none): every one must be refused, silently.
    const ids = [scene.foreign.id, "no-such-conversation"];
    const seed = fuzzSeed("socket events without ack");
    const eventName = fc.oneof(fc.constantFrom(...EVENTS), fc.string({ maxLength: 30 }).filter((n) => !["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"].includes(n)));
    await fc.assert(
      fc.asyncProperty(eventName.chain((e) => fc.tuple(fc.constant(e), eventPayload(e, ids, ["alice", "bob"], 1000))), fc.array(hostileValue(100), { maxLength: 3 }), async ([event, payload], extra) => {
        const s = await attackerSocket();
        s.emit(event as "sendMessage", payload as never, ...(extra as never[]));
      }),
      { seed, numRuns: 300, interruptAfterTimeLimit: 10_000, markInterruptAsFailure: false },
    );
    await sleep(500); // only to let anything that would leak arrive
    await assertNothingLeaked(node.url, scene, ATTACKER, accepted);
  });

  it("raw Socket.IO frames the client library never sends: the node survives and honest clients lose nothing", async () => {
    const seed = fuzzSeed("raw frames");
    const token = await mintToken(ATTACKER);
    const wsUrl = `${node.url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket`;
    let ws: WebSocket | undefined;
    let reconnects = 0;
    const open = async (): Promise<WebSocket> => {
      if (ws && ws.readyState === WebSocket.OPEN) return ws;
      reconnects++;
      const sock = new WebSocket(wsUrl);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("raw handshake timed out")), 10_000);
        sock.on("message", (data) => {
          const text = String(data);
          if (text.startsWith("0")) sock.send(`40${JSON.stringify({ token })}`);
          else if (text.startsWith("40")) {
            clearTimeout(timer);
            resolve();
          } else if (text === "2") sock.send("3");
        });
        sock.on("error", reject);
      });
      ws = sock;
      return sock;
    };
    const frame = fc.oneof(
      fc.string({ maxLength: 200 }).map((s) => `42${s}`), // an event packet with arbitrary JSON text
      fc.tuple(fc.constantFrom(...EVENTS), hostilePayload([scene.foreign.id], ["alice"])).map(([e, p]) => `42${JSON.stringify([e, p])}`),
      fc.tuple(fc.nat(99), fc.string({ maxLength: 60 })).map(([n, s]) => `45${n}-${s}`), // a binary event announcing attachments that never come
      fc.string({ maxLength: 100 }).map((s) => `4${s}`), // any Socket.IO packet type
      fc.string({ maxLength: 100 }), // any Engine.IO text
      fc.uint8Array({ maxLength: 100 }).map((b) => Buffer.from(b)), // a binary frame with no announcement
    );
    // After each frame: the node either closed the connection or still answers on it.
    let ackId = 0;
    const answers = (sock: WebSocket) =>
      new Promise<"answered" | "closed">((resolve, reject) => {
        const id = ++ackId;
        const timer = setTimeout(() => reject(new Error("the node neither answered nor closed the connection")), 10_000);
        const done = (v: "answered" | "closed") => {
          clearTimeout(timer);
          sock.off("message", onMessage);
          sock.off("close", onClose);
          resolve(v);
        };
        const onMessage = (data: WebSocket.RawData) => {
          const text = String(data);
          if (text === "2") sock.send("3");
          if (text.startsWith(`43${id}[`)) done("answered");
        };
        const onClose = () => done("closed");
        sock.on("message", onMessage);
        sock.on("close", onClose);
        if (sock.readyState !== WebSocket.OPEN) return done("closed");
        sock.send(`42${id}["stopTyping",{"conversationId":"no-such-conversation"}]`);
      });
    await fc.assert(
      fc.asyncProperty(frame, async (f) => {
        const sock = await open();
        sock.send(f);
        await answers(sock);
      }),
      { seed, numRuns: 200, interruptAfterTimeLimit: 12_000, markInterruptAsFailure: false },
    );
    console.log(`raw frames: ${reconnects} connections (the node closes a connection that sends an unparsable packet)`);
    ws?.terminate();
    await sleep(500); // only to let anything that would leak arrive
    await assertNothingLeaked(node.url, scene, ATTACKER, accepted);
  });
});
