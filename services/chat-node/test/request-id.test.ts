/**
 * Request ids, straight to a node: an incoming X-Request-Id that is safe is returned on the answer
 * and is the `reqId` of the node's log lines about that request; a missing or hostile one is
 * replaced by a generated id; every answer carries one, errors (400, 404, 429, 500) and
 * Engine.IO's own answers included.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { pino } from "pino";
import { TEST_SECRET, eventually, mintToken, startNode, stopAll, tempDir, type NodeHandle } from "@chat/test-kit";
import { loadConfig } from "../src/config.ts";
import { buildApp, type App } from "../src/app.ts";
import { createStore } from "../src/store/index.ts";

let node: NodeHandle;
const SAFE = /^[A-Za-z0-9._:-]{1,128}$/;

async function get(path: string, headers: Record<string, string> = {}, init: RequestInit = {}): Promise<Response> {
  return fetch(`${node.url}${path}`, { ...init, headers: { ...headers, ...(init.headers as Record<string, string> | undefined) } });
}

before(async () => {
  node = await startNode({ LOG_LEVEL: "debug", RATE_REST_READ_PER_SEC: "0.001", RATE_REST_READ_BURST: "2" });
});
after(async () => {
  await stopAll();
});

describe("a node's request ids", () => {
  test("a safe incoming X-Request-Id is returned as given", async () => {
    for (const id of ["3f2a9c0e8b7d4e1f9a6b5c4d3e2f1a0b", "req-123", "a.b:c_d-e"]) {
      const res = await get("/healthz", { "x-request-id": id });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("x-request-id"), id);
    }
  });

  test("a missing, overlong or hostile id is replaced by a generated, safe one", async () => {
    const seen = new Set<string>();
    for (const given of [undefined, "x".repeat(129), "a b", "<script>", "id\u00e9", "a\\nfake log line", "'; DROP", ""]) {
      const res = await get("/healthz", given === undefined ? {} : { "x-request-id": given });
      const id = res.headers.get("x-request-id");
      assert.ok(id && SAFE.test(id), `a safe id for ${JSON.stringify(given)}, got ${JSON.stringify(id)}`);
      assert.notEqual(id, given);
      seen.add(id);
    }
    assert.equal(seen.size, 8, "each request gets an id of its own");
  });

  test("errors carry the id: 404, 400 (router, body, URL), 401, 429", async () => {
    const token = await mintToken("rid-alice");
    const auth = { authorization: `Bearer ${token}` };
    const cases: [id: string, path: string, init: RequestInit, status: number][] = [
      ["rid-404", "/no/such/route", {}, 404],
      ["rid-400-json", "/conversations", { method: "POST", body: "{bad", headers: { ...auth, "content-type": "application/json" } }, 400],
      ["rid-400-url", "/conversations/%E0%A4%A", { headers: auth }, 400],
      ["rid-400-param", `/conversations/${"a".repeat(600)}`, { headers: auth }, 400],
      ["rid-401", "/conversations", {}, 401],
    ];
    for (const [id, path, init, status] of cases) {
      const res = await get(path, { "x-request-id": id }, init);
      assert.equal(res.status, status, id);
      assert.equal(res.headers.get("x-request-id"), id, id);
    }
    // RATE_REST_READ_BURST=2: the third read within the window is refused.
    let limited: Response | undefined;
    for (let i = 0; i < 5 && !limited; i++) {
      const res = await get("/conversations", { authorization: `Bearer ${token}`, "x-request-id": `rid-429-${i}` });
      if (res.status === 429) limited = res;
      else assert.equal(res.headers.get("x-request-id"), `rid-429-${i}`);
    }
    assert.ok(limited, "a read past the burst is refused");
    assert.match(limited.headers.get("x-request-id") ?? "", /^rid-429-\d$/);
    assert.ok(limited.headers.get("retry-after"));
  });

  test("a browser on an allowed origin may read it (CORS exposes X-Request-Id)", async () => {
    const res = await get("/limits", { origin: "http://localhost:3000", "x-request-id": "rid-cors" });
    assert.equal(res.headers.get("x-request-id"), "rid-cors");
    assert.ok((res.headers.get("access-control-expose-headers") ?? "").toLowerCase().split(/,\s*/).includes("x-request-id"), res.headers.get("access-control-expose-headers") ?? "none");
  });

  test("Engine.IO's answers carry an id too", async () => {
    const res = await get("/socket.io/?EIO=4&transport=polling", { "x-request-id": "rid-engine" });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-request-id"), "rid-engine");
    const bad = await get("/socket.io/?EIO=4&transport=polling", { "x-request-id": "bad id;<b>" });
    assert.match(bad.headers.get("x-request-id") ?? "", SAFE);
  });

  test("the id is the reqId of the node's log line about the request (LOG_LEVEL=debug)", async () => {
    const res = await get("/limits", { "x-request-id": "rid-logged-0123" });
    assert.equal(res.headers.get("x-request-id"), "rid-logged-0123");
    const line = await eventually(() => node.output().split("\n").find((l) => l.includes('"reqId":"rid-logged-0123"')), 10_000, "the request's log line");
    assert.equal((JSON.parse(line ?? "{}") as { url?: string }).url, "/limits");
  });
});

describe("a 500 in process", () => {
  let app: App | undefined;
  const lines: Record<string, unknown>[] = [];
  after(async () => {
    await app?.shutdown().catch(() => undefined);
  });

  test("an internal error answers 500 with the id, and its log line carries it as reqId", async () => {
    const config = loadConfig({ PORT: "0", HOST: "127.0.0.1", DATA_DIR: tempDir("rid-"), JWT_SECRET: TEST_SECRET, LOG_LEVEL: "info", RATE_LIMIT_DISABLED: "1" });
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString("utf8").split("\n").filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    const logger = pino({ level: "info" }, sink);
    const real = await createStore(config, logger);
    // A store whose listing fails with a bug (not an outage): the contract's 500 INTERNAL.
    const store = new Proxy(real, {
      get(target, prop, receiver) {
        if (prop === "listConversations") return async () => { throw new TypeError("a bug in the store"); };
        const v: unknown = Reflect.get(target, prop, receiver);
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    app = await buildApp(config, { store, logger });
    const port = await app.listen();
    const res = await fetch(`http://127.0.0.1:${port}/conversations`, { headers: { authorization: `Bearer ${await mintToken("rid-carol")}`, "x-request-id": "rid-500" } });
    assert.equal(res.status, 500);
    assert.equal(res.headers.get("x-request-id"), "rid-500");
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, "INTERNAL");
    const logged = lines.find((l) => l.msg === "request failed");
    assert.ok(logged, `a "request failed" line, got ${JSON.stringify(lines.map((l) => l.msg))}`);
    assert.equal(logged.reqId, "rid-500");
  });
});
