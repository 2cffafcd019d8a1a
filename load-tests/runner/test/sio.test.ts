/**
 * The shared framing module (load-tests/k6/lib/sio.js), which the k6 scenarios use, driven from
 * Node over the `ws` package: against the real chat node (JWT handshake, join, send with ack,
 * newMessage fan-out, refusal), and against a socket.io server pinging every 100 ms.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { spawnSync } from "node:child_process";
import path from "node:path";
import WebSocket from "ws";
import { Server } from "socket.io";
import { api, mintToken, startNode, stopAll, TEST_SECRET, type NodeHandle } from "@chat/test-kit";
import type { Conversation, JoinAck, MessageData, SendAck } from "@chat/protocol";
import { createSioClient, decode, encodeAck, encodeConnect, encodeEvent, socketUrl, type SioClient } from "../../k6/lib/sio.js";

describe("sio.js encoding", () => {
  test("encodes connect, events, acks", () => {
    assert.equal(encodeConnect({ token: "t" }), '40{"token":"t"}');
    assert.equal(encodeConnect(), "40");
    assert.equal(encodeConnect(undefined, "/admin"), "40/admin,");
    assert.equal(encodeEvent("sendMessage", [{ a: 1 }]), '42["sendMessage",{"a":1}]');
    assert.equal(encodeEvent("sendMessage", [{ a: 1 }], 12), '4212["sendMessage",{"a":1}]');
    assert.equal(encodeAck(7, [{ ok: true }]), '437[{"ok":true}]');
    assert.equal(socketUrl("http://h:1/"), "ws://h:1/socket.io/?EIO=4&transport=websocket");
    assert.equal(socketUrl("https://h"), "wss://h/socket.io/?EIO=4&transport=websocket");
  });

  test("decodes every packet kind", () => {
    assert.deepEqual(decode('0{"sid":"x","pingInterval":25000,"pingTimeout":20000}'), { kind: "open", data: { sid: "x", pingInterval: 25000, pingTimeout: 20000 } });
    assert.equal(decode("2").kind, "ping");
    assert.equal(decode("1").kind, "close");
    assert.deepEqual(decode('40{"sid":"s1"}'), { kind: "connect", nsp: "/", data: { sid: "s1" } });
    assert.equal((decode('44{"message":"UNAUTHORIZED"}') as { message: string }).message, "UNAUTHORIZED");
    assert.deepEqual(decode('42["newMessage",{"seq":1}]'), { kind: "event", nsp: "/", id: undefined, name: "newMessage", args: [{ seq: 1 }] });
    assert.deepEqual(decode('4213["ping",1]'), { kind: "event", nsp: "/", id: 13, name: "ping", args: [1] });
    assert.deepEqual(decode('4312[{"ok":true}]'), { kind: "ack", nsp: "/", id: 12, args: [{ ok: true }] });
    assert.deepEqual(decode('42/admin,3["x"]'), { kind: "event", nsp: "/admin", id: 3, name: "x", args: [] });
    assert.equal(decode("42[broken").kind, "invalid");
    assert.equal(decode('451-["x",{"_placeholder":true,"num":0}]').kind, "unsupported");
    assert.equal(decode("").kind, "invalid");
  });

  test("an emit on a transport that is not open throws and leaves no acknowledgement pending", () => {
    const sent: string[] = [];
    const ws = { readyState: 3, send: (f: string) => sent.push(f), close: () => {} };
    const client = createSioClient(ws, {});
    assert.throws(() => client.emit("sendMessage", { a: 1 }, () => {}), { name: "InvalidStateError" });
    assert.equal(client.pendingAcks, 0);
    assert.deepEqual(sent, []);
    // k6's WebSocket throws from send() itself: the ack is registered only after a frame went out.
    const refuse = () => {
      throw new Error("InvalidStateError");
    };
    const k6Like = { readyState: 1, send: refuse, close: () => {} };
    const k6Client = createSioClient(k6Like, {});
    assert.throws(() => k6Client.emit("sendMessage", {}, () => {}), /InvalidStateError/);
    assert.equal(k6Client.pendingAcks, 0);
    ws.readyState = 1;
    assert.equal(client.emit("typing", {}, () => {}), 1, "ack ids are not reused after a failed emit");
    assert.equal(client.pendingAcks, 1);
    assert.deepEqual(client.dropAcks(), [1]);
    assert.equal(client.pendingAcks, 0);
    client.feed("431[{}]");
    assert.equal(client.pendingAcks, 0, "a late answer to a dropped ack is ignored");
  });

  test("feed() only takes the packets of the client's own namespace", () => {
    const make = (nsp?: string) => {
      const sent: string[] = [];
      const seen: string[] = [];
      const client = createSioClient(
        { send: (f: string) => sent.push(f), close: () => {} },
        {
          nsp,
          onConnect: (sid) => seen.push(`connect ${sid}`),
          onConnectError: (m) => seen.push(`connect_error ${m}`),
          onEvent: (name) => seen.push(`event ${name}`),
          onDisconnect: (r) => seen.push(`disconnect ${r}`),
        },
      );
      return { client, sent, seen };
    };
    const admin = make("/admin");
    admin.client.feed('0{"sid":"e","pingInterval":25000,"pingTimeout":20000}');
    assert.deepEqual(admin.sent, ["40/admin,"]);
    for (const f of ['40{"sid":"main"}', '44{"message":"NOPE"}', '42["x"]', "41"]) admin.client.feed(f);
    assert.equal(admin.client.connected, false);
    assert.equal(admin.client.otherNsp, 4);
    assert.deepEqual(admin.seen, []);
    admin.client.feed('40/admin,{"sid":"adm"}');
    admin.client.emit("ping", 1, (args) => admin.seen.push(`ack ${JSON.stringify(args)}`));
    admin.client.feed("430[1]");
    assert.equal(admin.client.pendingAcks, 1, "an ack of / does not answer /admin's emit");
    admin.client.feed('42/admin,["y"]');
    admin.client.feed("43/admin,0[2]");
    admin.client.feed("2");
    assert.deepEqual(admin.seen, ["connect adm", "event y", "ack [2]"]);
    assert.equal(admin.sent.at(-1), "3", "Engine.IO pings have no namespace and are answered");

    const main = make();
    main.client.feed('40/admin,{"sid":"adm"}');
    main.client.feed('42/admin,["y"]');
    assert.equal(main.client.connected, false);
    main.client.feed('40{"sid":"main"}');
    main.client.feed('42["x"]');
    main.client.feed("41/admin,");
    assert.equal(main.client.connected, true);
    assert.deepEqual(main.seen, ["connect main", "event x"]);
    assert.equal(main.client.otherNsp, 3);
  });
});

interface Peer {
  ws: WebSocket;
  client: SioClient;
  events: { name: string; args: unknown[] }[];
}

/** Connects through sio.js over `ws`; resolves once connected, rejects with the connect_error message. */
function connectSio(url: string, auth: unknown): Promise<Peer> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(socketUrl(url));
    const events: Peer["events"] = [];
    const client = createSioClient(ws, {
      auth,
      onConnect: () => resolve({ ws, client, events }),
      onConnectError: (message) => reject(new Error(message)),
      onEvent: (name, args) => events.push({ name, args }),
    }).attach();
    ws.on("error", reject);
  });
}

const ackOf = <T>(client: SioClient, event: string, payload: unknown) =>
  new Promise<T>((resolve) => client.emit(event, payload, (args) => resolve(args[0] as T)));

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("sio.js against the chat node", () => {
  let node: NodeHandle;
  const open: Peer[] = [];
  before(async () => {
    node = await startNode({ RATE_LIMIT_DISABLED: "1" });
  });
  after(async () => {
    for (const p of open) p.ws.terminate();
    await stopAll();
  });

  test("connects with a JWT, joins, sends with an ack, and every member receives newMessage", async () => {
    const [ta, tb] = [await mintToken("sio-a"), await mintToken("sio-b")];
    const conv = await api(node.url, ta).post<Conversation>("/conversations", { members: ["sio-a", "sio-b"] });
    assert.equal(conv.status, 201);
    const a = await connectSio(node.url, { token: ta });
    const b = await connectSio(node.url, { token: tb });
    open.push(a, b);
    assert.ok(a.client.sid && a.client.engineSid, "connect and open packets carry ids");
    for (const p of [a, b]) {
      const j = await ackOf<JoinAck>(p.client, "joinConversation", { conversationId: conv.body.id });
      assert.equal(j.ok, true);
      assert.equal(j.ok && j.lastSeq, 0);
    }
    const sent = await ackOf<SendAck>(a.client, "sendMessage", { conversationId: conv.body.id, message: "hello over sio.js", clientMessageId: "c1" });
    assert.ok(sent.ok);
    assert.equal(sent.message.seq, 1);
    assert.equal(sent.message.senderId, "sio-a");
    for (const p of [a, b]) {
      await until(() => p.events.some((e) => e.name === "newMessage"), "newMessage");
      const m = p.events.find((e) => e.name === "newMessage")?.args[0] as MessageData;
      assert.equal(m.message, "hello over sio.js");
      assert.equal(m.clientMessageId, "c1");
    }
    assert.equal(a.client.pendingAcks, 0);
    const refused = await ackOf<SendAck>(b.client, "sendMessage", { conversationId: conv.body.id, message: "x", senderId: "sio-a" });
    assert.equal(!refused.ok && refused.error.code, "FORBIDDEN");
  });

  test("after the connection closed, an emit throws at once instead of waiting for an answer", async () => {
    const token = await mintToken("sio-closed");
    const p = await connectSio(node.url, { token });
    const closed = new Promise((r) => p.ws.once("close", r));
    p.ws.close();
    await closed;
    assert.throws(() => p.client.emit("joinConversation", { conversationId: "x" }, () => {}), { name: "InvalidStateError" });
    assert.equal(p.client.pendingAcks, 0);
  });

  test("a wrong token gets connect_error UNAUTHORIZED", async () => {
    await assert.rejects(connectSio(node.url, { token: "not-a-jwt" }), /UNAUTHORIZED/);
    await assert.rejects(connectSio(node.url, undefined), /UNAUTHORIZED/);
  });

  test("the k6 scripts' own HS256 (lib/auth.js) mints tokens the node accepts", async () => {
    const fixture = path.join(import.meta.dirname, "fixtures/mint-with-k6-auth.ts");
    const r = spawnSync(process.execPath, ["--experimental-vm-modules", "--no-warnings", fixture, "k6-minted", TEST_SECRET], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const token = r.stdout.trim();
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    const p = await connectSio(node.url, { token });
    open.push(p);
    assert.ok(p.client.connected);
    const res = await api(node.url, token).post<Conversation>("/conversations", { members: ["k6-minted"] });
    assert.equal(res.status, 201);
    assert.deepEqual(res.body.members, ["k6-minted"]);
  });
});

describe("sio.js heartbeat", () => {
  test("answers every ping with a pong, so a server pinging every 100 ms keeps the connection", async () => {
    const server = http.createServer();
    const io = new Server(server, { pingInterval: 100, pingTimeout: 300 });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const disconnects: string[] = [];
    io.on("connection", (s) => s.on("disconnect", (reason) => disconnects.push(reason)));
    try {
      const p = await connectSio(`http://127.0.0.1:${port}`, {});
      let pings = 0;
      p.ws.on("message", (d: Buffer) => d.toString() === "2" && pings++);
      await until(() => pings >= 8, "8 pings");
      assert.equal(p.client.connected, true);
      assert.deepEqual(disconnects, []);
      p.client.close();
      await until(() => disconnects.length === 1, "the disconnect");
      assert.equal(disconnects[0], "client namespace disconnect");
      // Without pongs the server gives up on the connection: the answers above are what kept it.
      const silent = new WebSocket(socketUrl(`http://127.0.0.1:${port}`));
      const quiet = createSioClient({ send: (f: string) => f !== "3" && silent.send(f), close: () => silent.close() }, {});
      silent.on("message", (d: Buffer) => quiet.feed(d.toString()));
      await until(() => disconnects.length === 2, "ping timeout");
      assert.equal(disconnects[1], "ping timeout");
      silent.terminate();
    } finally {
      io.close();
    }
  });
});
