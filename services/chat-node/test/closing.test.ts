/**
 * The last moments of a drain, in-process: after the sockets are drained, `fastify.close()` waits for
 * the HTTP connections to end. A request that still arrives on a kept-alive connection (nginx's
 * upstream pool) is answered 503 UNAVAILABLE in the contract's error shape with `Connection: close`,
 * while the request already in progress on that connection is served in full. The first request of
 * a connection accepted before the listener closed is served, with `Connection: close`: nginx opens
 * one connection per request to a node and has already sent it.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { mintToken, tempDir, TEST_SECRET } from "@chat/test-kit";
import { buildApp, type App } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";

/** The status, headers and body of each HTTP/1.1 response in `raw`, in order. */
function responses(raw: string): { status: number; headers: string; body: string }[] {
  return raw
    .split(/(?=HTTP\/1\.1 \d{3} )/)
    .filter(Boolean)
    .map((r) => {
      const [head = "", body = ""] = r.split("\r\n\r\n");
      return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), headers: head.toLowerCase(), body };
    });
}

describe("a request arriving while the node closes", () => {
  let app: App | undefined;
  after(async () => {
    await app?.shutdown().catch(() => undefined);
  });

  it("gets 503 UNAVAILABLE in the contract's shape; the one in progress is served", async () => {
    app = await buildApp(loadConfig({ PORT: "0", HOST: "127.0.0.1", DATA_DIR: tempDir("closing-"), JWT_SECRET: TEST_SECRET, LOG_LEVEL: "silent", RATE_LIMIT_DISABLED: "1" }));
    const port = await app.listen();
    const token = await mintToken("alice");
    const body = JSON.stringify({ members: ["bob"], title: "in progress" });
    const sock = net.connect(port, "127.0.0.1");
    let raw = "";
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => (raw += d));
    const ended = new Promise<void>((resolve) => sock.on("close", () => resolve()));
    await new Promise<void>((resolve) => sock.once("connect", () => resolve()));

    // Request 1: headers and half its body, so the connection is busy when the close begins.
    const head = `POST /conversations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
    sock.write(head + body.slice(0, 10));
    await new Promise((r) => setTimeout(r, 100));

    const shutdown = app.shutdown();
    const deadline = Date.now() + 5000;
    while (app.fastify.server.listening && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(app.fastify.server.listening, false, "the close began");

    // The rest of request 1, and request 2 pipelined behind it on the same connection.
    sock.write(body.slice(10) + `GET /conversations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`);
    await Promise.race([ended, new Promise((r) => setTimeout(r, 5000))]);
    await shutdown;
    sock.destroy();

    const [first, second] = responses(raw);
    assert.equal(first?.status, 201, `the request in progress is served: ${raw}`);
    assert.equal((JSON.parse(first.body) as { title: string }).title, "in progress");
    assert.equal(second?.status, 503, `the next one is refused: ${raw}`);
    assert.deepEqual((JSON.parse(second.body) as { error: { code: string } }).error.code, "UNAVAILABLE");
    assert.match(second.headers, /connection: close/);
    assert.match(second.headers, /retry-after: 1/);
  });

  it("serves, with Connection: close, the first request of a connection opened before the close", async () => {
    app = await buildApp(loadConfig({ PORT: "0", HOST: "127.0.0.1", DATA_DIR: tempDir("closing-"), JWT_SECRET: TEST_SECRET, LOG_LEVEL: "silent", RATE_LIMIT_DISABLED: "1" }));
    const port = await app.listen();
    const token = await mintToken("alice");
    const accepted = new Promise<void>((resolve) => app!.fastify.server.once("connection", () => resolve()));
    const sock = net.connect(port, "127.0.0.1");
    let raw = "";
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => (raw += d));
    const ended = new Promise<void>((resolve) => sock.on("close", () => resolve()));
    await accepted;

    const shutdown = app.shutdown();
    const deadline = Date.now() + 5000;
    while (app.fastify.server.listening && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(app.fastify.server.listening, false, "the close began");

    // As nginx does: the connection was open (accepted) before the close, its one request comes now.
    const body = JSON.stringify({ members: ["bob"], title: "sent as the node closed" });
    sock.write(`POST /conversations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    await Promise.race([ended, new Promise((r) => setTimeout(r, 5000))]);
    await shutdown;
    sock.destroy();

    const [only, extra] = responses(raw);
    assert.equal(only?.status, 201, `served: ${raw}`);
    assert.equal((JSON.parse(only.body) as { title: string }).title, "sent as the node closed");
    assert.match(only.headers, /connection: close/);
    assert.equal(extra, undefined);
  });
});
