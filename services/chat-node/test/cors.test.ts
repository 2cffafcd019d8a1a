/**
 * CORS on REST: the origins of CORS_ORIGINS (as for Socket.IO; `*` reflects any origin) may call
 * the REST API from a browser. Preflights are answered before authentication and rate limits;
 * every answer to an allowed origin, errors included, carries Access-Control-Allow-Origin so that a
 * page can read the error body and Retry-After. Other origins, and requests without Origin (curl,
 * servers), get no CORS headers and the same answers as without CORS.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { api, closeAllSockets, mintToken, startNode, stopAll, type NodeHandle } from "@chat/test-kit";
import { createConversation, metricSum } from "./helpers.ts";

const DEFAULT_ORIGIN = "http://localhost:3000";
const EVIL = "https://evil.example";

/** A browser's preflight for a JSON request carrying a bearer token. */
function preflight(url: string, path: string, origin: string | undefined, method = "POST", headers = "authorization, content-type"): Promise<Response> {
  const h: Record<string, string> = { "access-control-request-method": method, "access-control-request-headers": headers };
  if (origin !== undefined) h.origin = origin;
  return fetch(url + path, { method: "OPTIONS", headers: h });
}

/** A REST call as a page on `origin` makes it. */
async function call(url: string, method: string, path: string, origin: string | undefined, token?: string, body?: unknown) {
  const h: Record<string, string> = {};
  if (origin !== undefined) h.origin = origin;
  return api(url, token).call<{ error?: { code: string } } & Record<string, unknown>>(method, path, body, h);
}

const list = (v: string | null) => (v ?? "").split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);

function assertPreflightOk(res: Response, origin: string, what: string): void {
  assert.ok(res.status === 204 || res.status === 200, `${what}: status ${res.status}`);
  const h = res.headers;
  assert.equal(h.get("access-control-allow-origin"), origin, what);
  assert.equal(h.get("access-control-allow-credentials"), "true", what);
  for (const m of ["get", "post", "head", "options"]) assert.ok(list(h.get("access-control-allow-methods")).includes(m), `${what}: methods ${h.get("access-control-allow-methods")}`);
  for (const x of ["authorization", "content-type"]) assert.ok(list(h.get("access-control-allow-headers")).includes(x), `${what}: headers ${h.get("access-control-allow-headers")}`);
  assert.ok(Number(h.get("access-control-max-age")) > 0, `${what}: max-age ${h.get("access-control-max-age")}`);
  assert.ok(list(h.get("vary")).includes("origin"), `${what}: vary ${h.get("vary")}`);
}

/** An actual (non-preflight) answer a page on `origin` may read, Retry-After included. */
function assertReadable(res: { status: number; headers: Headers }, origin: string, what: string): void {
  assert.equal(res.headers.get("access-control-allow-origin"), origin, `${what} (${res.status})`);
  assert.equal(res.headers.get("access-control-allow-credentials"), "true", what);
  assert.ok(list(res.headers.get("access-control-expose-headers")).includes("retry-after"), `${what}: expose ${res.headers.get("access-control-expose-headers")}`);
  assert.ok(list(res.headers.get("vary")).includes("origin"), `${what}: vary ${res.headers.get("vary")}`);
}

function assertNoCors(headers: Headers, what: string): void {
  const cors = [...headers.keys()].filter((k) => k.startsWith("access-control-"));
  assert.deepEqual(cors, [], `${what}: no CORS headers`);
}

describe("CORS on REST with the default CORS_ORIGINS", () => {
  let node: NodeHandle;
  before(async () => {
    // Low REST write limits so that a 429 is reached in a few requests.
    node = await startNode({ RATE_REST_WRITE_PER_SEC: "1", RATE_REST_WRITE_BURST: "3" });
  });
  after(async () => {
    closeAllSockets();
    await stopAll();
  });

  it("answers a preflight from http://localhost:3000 without a token, before authentication", async () => {
    const conv = await createConversation(node.url, "cors-alice", ["cors-bob"]);
    for (const [path, method] of [
      ["/conversations", "POST"],
      ["/conversations", "GET"],
      [`/conversations/${conv.id}/messages`, "POST"],
      [`/conversations/${conv.id}/messages`, "GET"],
      [`/conversations/${conv.id}`, "GET"],
      [`/conversations/${conv.id}/presence`, "GET"],
    ] as const) {
      const res = await preflight(node.url, path, DEFAULT_ORIGIN, method);
      assertPreflightOk(res, DEFAULT_ORIGIN, `OPTIONS ${path} for ${method}`);
      assert.equal(await res.text(), "", "a preflight answer has no body");
    }
  });

  it("answers an OPTIONS from an allowed origin without Access-Control-Request-Method with 204, not a text/plain 400", async () => {
    const res = await fetch(`${node.url}/conversations`, { method: "OPTIONS", headers: { origin: DEFAULT_ORIGIN } });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), DEFAULT_ORIGIN);
    assert.equal(await res.text(), "");
  });

  it("does not count preflights against rate limits", async () => {
    const limitedBefore = await metricSum(node.url, "chat_rate_limited_total");
    // Far past the write burst (3): a preflight is no request of a user.
    const answers = await Promise.all(Array.from({ length: 20 }, () => preflight(node.url, "/conversations", DEFAULT_ORIGIN)));
    assert.deepEqual([...new Set(answers.map((r) => r.status))], [204]);
    assert.equal(await metricSum(node.url, "chat_rate_limited_total"), limitedBefore);
    // The user's own writes are untouched by them.
    const res = await call(node.url, "POST", "/conversations", DEFAULT_ORIGIN, await mintToken("cors-carol"), { members: ["cors-dan"] });
    assert.equal(res.status, 201);
  });

  it("lets http://localhost:3000 read successful GETs and POSTs", async () => {
    const token = await mintToken("cors-erin");
    const created = await call(node.url, "POST", "/conversations", DEFAULT_ORIGIN, token, { members: ["cors-fay"], title: "t" });
    assert.equal(created.status, 201);
    assertReadable(created, DEFAULT_ORIGIN, "POST /conversations");
    const id = created.body.id as string;
    const sent = await call(node.url, "POST", `/conversations/${id}/messages`, DEFAULT_ORIGIN, token, { message: "hello from a page", clientMessageId: "c1" });
    assert.equal(sent.status, 201);
    assertReadable(sent, DEFAULT_ORIGIN, "POST /conversations/:id/messages");
    const listed = await call(node.url, "GET", "/conversations", DEFAULT_ORIGIN, token);
    assert.equal(listed.status, 200);
    assertReadable(listed, DEFAULT_ORIGIN, "GET /conversations");
    const hist = await call(node.url, "GET", `/conversations/${id}/messages`, DEFAULT_ORIGIN, token);
    assert.equal(hist.status, 200);
    assertReadable(hist, DEFAULT_ORIGIN, "GET /conversations/:id/messages");
    const head = await call(node.url, "HEAD", "/conversations", DEFAULT_ORIGIN, token);
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("access-control-allow-origin"), DEFAULT_ORIGIN, "HEAD");
  });

  it("lets http://localhost:3000 read error answers: 401, 403, 404, 400", async () => {
    const conv = await createConversation(node.url, "cors-gus", ["cors-hal"]);
    const cases: [string, Awaited<ReturnType<typeof call>>, number, string][] = [
      ["no token", await call(node.url, "GET", "/conversations", DEFAULT_ORIGIN), 401, "UNAUTHORIZED"],
      ["bad token", await call(node.url, "POST", "/conversations", DEFAULT_ORIGIN, "not.a.jwt", { members: [] }), 401, "UNAUTHORIZED"],
      ["not a member", await call(node.url, "GET", `/conversations/${conv.id}/messages`, DEFAULT_ORIGIN, await mintToken("cors-eve")), 403, "FORBIDDEN"],
      ["unknown conversation", await call(node.url, "GET", "/conversations/no-such-conversation", DEFAULT_ORIGIN, await mintToken("cors-gus")), 404, "NOT_FOUND"],
      ["unknown route", await call(node.url, "GET", "/no/such/route", DEFAULT_ORIGIN), 404, "NOT_FOUND"],
      ["bad body", await call(node.url, "POST", `/conversations/${conv.id}/messages`, DEFAULT_ORIGIN, await mintToken("cors-gus"), "{not json"), 400, "INVALID_PAYLOAD"],
      // Refused by Fastify's router before any hook runs (frameworkErrors).
      ["a URL that does not percent-decode", await call(node.url, "GET", "/conversations/%E0%A4%A", DEFAULT_ORIGIN, await mintToken("cors-gus")), 400, "INVALID_PAYLOAD"],
    ];
    for (const [what, res, status, code] of cases) {
      assert.equal(res.status, status, what);
      assert.equal(res.body.error?.code, code, what);
      assertReadable(res, DEFAULT_ORIGIN, what);
    }
  });

  it("lets http://localhost:3000 read a 429 and its Retry-After", async () => {
    const token = await mintToken("cors-ivy");
    let limited: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < 8 && !limited; i++) {
      const res = await call(node.url, "POST", "/conversations", DEFAULT_ORIGIN, token, { members: ["cors-jon"] });
      if (res.status === 429) limited = res;
      else assert.equal(res.status, 201);
    }
    assert.ok(limited, "the write limit was reached");
    assert.equal(limited.body.error?.code, "RATE_LIMITED");
    assert.ok(Number(limited.headers.get("retry-after")) >= 1, `retry-after ${limited.headers.get("retry-after")}`);
    assertReadable(limited, DEFAULT_ORIGIN, "429");
  });

  it("gives another origin no CORS headers, and refuses its preflight as an unknown route", async () => {
    for (const origin of [EVIL, "http://localhost:8080", "http://localhost:3000.evil.example", "null"]) {
      const pre = await preflight(node.url, "/conversations", origin);
      assert.equal(pre.status, 404, origin);
      assert.deepEqual(await pre.json(), { error: { code: "NOT_FOUND", message: "no such route" } });
      assertNoCors(pre.headers, `preflight from ${origin}`);
      // The request itself is served as without CORS; only the browser withholds the answer.
      const res = await call(node.url, "GET", "/conversations", origin, await mintToken("cors-kim"));
      assert.equal(res.status, 200, origin);
      assert.deepEqual(res.body, { conversations: [] });
      assertNoCors(res.headers, `GET from ${origin}`);
      const err = await call(node.url, "GET", "/conversations", origin);
      assert.equal(err.status, 401);
      assertNoCors(err.headers, `401 to ${origin}`);
    }
  });

  it("answers requests without Origin (curl, servers) as before: no CORS headers", async () => {
    const token = await mintToken("cors-lea");
    const created = await call(node.url, "POST", "/conversations", undefined, token, { members: ["cors-max"] });
    assert.equal(created.status, 201);
    assertNoCors(created.headers, "POST without Origin");
    const listed = await call(node.url, "GET", "/conversations", undefined, token);
    assert.equal(listed.status, 200);
    assertNoCors(listed.headers, "GET without Origin");
    const unauth = await call(node.url, "GET", "/conversations", undefined);
    assert.equal(unauth.status, 401);
    assertNoCors(unauth.headers, "401 without Origin");
    // An OPTIONS without Origin is no preflight: the usual 404 of the contract.
    const options = await preflight(node.url, "/conversations", undefined);
    assert.equal(options.status, 404);
    assert.deepEqual(await options.json(), { error: { code: "NOT_FOUND", message: "no such route" } });
    assertNoCors(options.headers, "OPTIONS without Origin");
  });

  it("still answers /healthz, /readyz and /metrics, with or without Origin", async () => {
    for (const origin of [undefined, DEFAULT_ORIGIN, EVIL]) {
      const health = await call(node.url, "GET", "/healthz", origin);
      assert.equal(health.status, 200);
      assert.equal(health.body.status, "ok");
      const ready = await call(node.url, "GET", "/readyz", origin);
      assert.equal(ready.status, 200);
      assert.equal(ready.body.status, "ready");
      const metrics = await call(node.url, "GET", "/metrics", origin);
      assert.equal(metrics.status, 200);
      assert.match(String(metrics.body), /^chat_http_requests_total\{/m);
      assert.match(metrics.headers.get("content-type") ?? "", /^text\/plain/);
      if (origin === DEFAULT_ORIGIN) assert.equal(health.headers.get("access-control-allow-origin"), origin);
      else for (const r of [health, ready, metrics]) assertNoCors(r.headers, `ops without an allowed Origin (${origin})`);
    }
  });

  it("allows the same origins as Socket.IO", async () => {
    const poll = (origin: string) => fetch(`${node.url}/socket.io/?EIO=4&transport=polling`, { headers: { origin } });
    assert.equal((await poll(DEFAULT_ORIGIN)).headers.get("access-control-allow-origin"), DEFAULT_ORIGIN);
    assert.equal((await poll(EVIL)).headers.get("access-control-allow-origin"), null);
  });
});

describe("CORS on REST with a list of origins", () => {
  let node: NodeHandle;
  const A = "https://chat.example";
  const B = "http://127.0.0.1:8080";
  before(async () => {
    node = await startNode({ CORS_ORIGINS: ` ${A}, ${B} ` });
  });
  after(() => stopAll());

  it("allows each listed origin and no other", async () => {
    const token = await mintToken("list-ann");
    for (const origin of [A, B]) {
      assertPreflightOk(await preflight(node.url, "/conversations", origin), origin, `preflight from ${origin}`);
      const res = await call(node.url, "GET", "/conversations", origin, token);
      assert.equal(res.status, 200);
      assertReadable(res, origin, `GET from ${origin}`);
    }
    for (const origin of [DEFAULT_ORIGIN, `${A}:8443`, "http://chat.example"]) {
      assert.equal((await preflight(node.url, "/conversations", origin)).status, 404, origin);
      assertNoCors((await call(node.url, "GET", "/conversations", origin, token)).headers, origin);
    }
  });
});

describe("CORS on REST with CORS_ORIGINS=*", () => {
  let node: NodeHandle;
  before(async () => {
    node = await startNode({ CORS_ORIGINS: "*" });
  });
  after(() => stopAll());

  it("reflects any origin, on preflights, answers and errors", async () => {
    const token = await mintToken("star-bea");
    for (const origin of [DEFAULT_ORIGIN, EVIL, "http://localhost:5173"]) {
      assertPreflightOk(await preflight(node.url, "/conversations", origin), origin, `preflight from ${origin}`);
      const ok = await call(node.url, "GET", "/conversations", origin, token);
      assert.equal(ok.status, 200);
      assertReadable(ok, origin, `GET from ${origin}`);
      const err = await call(node.url, "GET", "/conversations", origin);
      assert.equal(err.status, 401);
      assertReadable(err, origin, `401 to ${origin}`);
    }
  });

  it("still gives requests without Origin no CORS headers", async () => {
    const res = await call(node.url, "GET", "/conversations", undefined, await mintToken("star-cid"));
    assert.equal(res.status, 200);
    assertNoCors(res.headers, "GET without Origin");
    assert.equal((await preflight(node.url, "/conversations", undefined)).status, 404);
    assert.equal((await call(node.url, "GET", "/healthz", undefined)).status, 200);
  });
});
