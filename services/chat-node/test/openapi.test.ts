/**
 * GET /openapi.json: a valid OpenAPI 3.1 document, generated from the routes' declared schemas,
 * naming every route the node registered; and the schemas only document, so bad input still gets
 * the contract's error codes, not Fastify's validation shapes.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import SwaggerParser from "@apidevtools/swagger-parser";
import { api, mintToken, tempDir, TEST_SECRET } from "@chat/test-kit";
import { buildApp, type App } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";

interface OpenApiDoc {
  openapi: string;
  paths: Record<string, Record<string, { responses: Record<string, unknown>; requestBody?: unknown; security?: unknown }>>;
}

/** Every method and path of the router, from printRoutes' tree (HEAD and the CORS `*` OPTIONS aside). */
function registeredRoutes(tree: string): string[] {
  const routes: string[] = [];
  const stack: string[] = [];
  for (const line of tree.split("\n")) {
    const m = /^([│ ]*)[├└]── (\S+)(?: \(([^)]+)\))?/.exec(line);
    if (!m) continue;
    const depth = (m[1] ?? "").length / 4;
    stack.length = depth;
    stack.push(m[2] ?? "");
    const url = stack.join("");
    for (const method of (m[3] ?? "").split(", ").filter(Boolean)) {
      if (method === "HEAD" || url === "*") continue;
      routes.push(`${method} ${url.replace(/:(\w+)/g, "{$1}")}`);
    }
  }
  return routes.sort();
}

describe("OpenAPI document", () => {
  let app: App;
  let url: string;

  before(async () => {
    // A page of one known file, whatever services/web/dist holds: its routes are files, not REST.
    const webDir = tempDir("openapi-web-");
    fs.writeFileSync(path.join(webDir, "index.html"), "<!doctype html><title>page</title>");
    app = await buildApp(
      loadConfig({ PORT: "0", HOST: "127.0.0.1", DATA_DIR: tempDir("openapi-"), WEB_DIR: webDir, JWT_SECRET: TEST_SECRET, LOG_LEVEL: "silent", DEV_INSECURE_TOKENS: "1", RATE_LIMIT_DISABLED: "1" }),
    );
    url = `http://127.0.0.1:${await app.listen()}`;
  });

  after(async () => {
    await app?.shutdown();
  });

  it("is served without a token and validates as OpenAPI 3.1", async () => {
    const res = await api(url).get<OpenApiDoc>("/openapi.json");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /application\/json/);
    assert.equal(res.body.openapi, "3.1.0");
    await SwaggerParser.validate(structuredClone(res.body) as never);
  });

  it("names every route the node registered, and nothing else", async () => {
    const doc = (await api(url).get<OpenApiDoc>("/openapi.json")).body;
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)).sort();
    const registered = registeredRoutes(app.fastify.printRoutes({ commonPrefix: false })).filter((r) => !["GET /openapi.json", "GET /", "GET /index.html"].includes(r));
    assert.ok(registered.length < registeredRoutes(app.fastify.printRoutes({ commonPrefix: false })).length, "the page's routes were there to leave out");
    assert.ok(registered.length >= 10, `routes found in the router: ${registered.join(", ")}`);
    assert.deepEqual(documented, registered);
  });

  it("describes bodies, answers and errors of the contract's routes", async () => {
    const doc = (await api(url).get<OpenApiDoc>("/openapi.json")).body;
    const post = doc.paths["/conversations/{id}/messages"]?.post;
    assert.ok(post?.requestBody, "the send documents its body");
    assert.deepEqual(Object.keys(post.responses).sort(), ["200", "201", "400", "401", "403", "404", "413", "429", "503"]);
    assert.deepEqual(post.security, [{ bearer: [] }]);
    const history = doc.paths["/conversations/{id}/messages"]?.get?.responses["200"] as { content: { "application/json": { schema: { required: string[] } } } };
    assert.deepEqual(history.content["application/json"].schema.required, ["messages", "hasMore"]);
  });

  it("keeps the contract's own validation: the schemas document, they do not validate", async () => {
    const alice = api(url, await mintToken("alice"));
    const conv = (await alice.post<{ id: string }>("/conversations", { members: ["bob"] })).body;
    const extra = await alice.post<{ error: { code: string } }>(`/conversations/${conv.id}/messages`, { message: "hi", extra: 1 });
    assert.equal(extra.status, 400);
    assert.equal(extra.body.error.code, "INVALID_PAYLOAD", "an unknown field is refused, not stripped");
    const badQuery = await alice.get<{ error: { code: string } }>(`/conversations/${conv.id}/messages?limit=abc`);
    assert.deepEqual([badQuery.status, badQuery.body.error.code], [400, "INVALID_PAYLOAD"]);
    const empty = await alice.post<{ error: { code: string } }>(`/conversations/${conv.id}/messages`, { message: "" });
    assert.deepEqual([empty.status, empty.body.error.code], [400, "INVALID_PAYLOAD"]);
    const sent = await alice.post<Record<string, unknown>>(`/conversations/${conv.id}/messages`, { message: "kept whole", clientMessageId: "c1" });
    assert.equal(sent.status, 201);
    assert.deepEqual(Object.keys(sent.body).sort(), ["clientMessageId", "conversationId", "id", "message", "senderId", "seq", "timestamp"]);
  });
});
