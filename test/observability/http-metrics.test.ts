/**
 * REST requests are counted by route pattern, method and status class, and timed by route
 * pattern and method: a dashboard sees which route answers what and how fast, and no path
 * segment (a conversation id) ever becomes a label value. Every REST 4xx is also exactly one
 * chat_errors_total, which the ChatClientErrorRate alert relies on.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { api, eventually, mintToken, startNode, stopAll, type NodeHandle } from "@chat/test-kit";
import { scrape, valueOf, type Sample } from "./promql.ts";

let node: NodeHandle;
let atStart: Sample[];
let conversationId: string;

before(async () => {
  node = await startNode({ NODE_ID: "obs-http" });
  atStart = (await scrape(node.url)).samples;
  const alice = await mintToken("obs-http-alice");
  const res = await api(node.url, alice).post<{ id: string }>("/conversations", { members: ["obs-http-alice", "obs-http-bob"], title: "t" });
  assert.equal(res.status, 201);
  conversationId = res.body.id;
  assert.equal((await api(node.url, alice).get(`/conversations/${conversationId}/messages`)).status, 200);
  assert.equal((await api(node.url, await mintToken("obs-http-eve")).get(`/conversations/${conversationId}/messages`)).status, 403);
  for (let i = 0; i < 3; i++) assert.equal((await api(node.url).get("/healthz")).status, 200);
  assert.equal((await api(node.url).get("/conversations")).status, 401);
  assert.equal((await api(node.url).get(`/no/such/${conversationId}`)).status, 404);
});

after(() => stopAll());

const count = (s: Sample[], labels: Record<string, string>) => valueOf(s, "chat_http_requests_total", labels);

test("every route's series exist at zero before its first request", () => {
  for (const [method, route] of [["GET", "/healthz"], ["POST", "/conversations"], ["GET", "/conversations/:id/messages"], ["*", "unmatched"]] as const) {
    for (const status of ["2xx", "3xx", "4xx", "5xx"]) {
      assert.ok(atStart.some((s) => s.name === "chat_http_requests_total" && s.labels.method === method && s.labels.route === route && s.labels.status === status), `${method} ${route} ${status}`);
    }
    assert.equal(valueOf(atStart, "chat_http_request_duration_seconds_count", { method, route }), 0);
  }
});

test("requests count under their route pattern and status class, and are timed", async () => {
  const s = (await eventually(async () => {
    const samples = (await scrape(node.url)).samples;
    return count(samples, { route: "unmatched" }) >= 1 ? samples : null;
  }, 5000, "the last request to be counted")) as Sample[];
  assert.equal(count(s, { method: "POST", route: "/conversations", status: "2xx" }), 1);
  assert.equal(count(s, { method: "GET", route: "/conversations/:id/messages", status: "2xx" }), 1);
  assert.equal(count(s, { method: "GET", route: "/conversations/:id/messages", status: "4xx" }), 1, "the non-member's 403");
  assert.equal(count(s, { method: "GET", route: "/healthz", status: "2xx" }), 3);
  assert.equal(count(s, { method: "GET", route: "/conversations", status: "4xx" }), 1, "the 401 without a token");
  assert.equal(count(s, { method: "*", route: "unmatched", status: "4xx" }), 1);
  assert.equal(valueOf(s, "chat_http_request_duration_seconds_count", { method: "GET", route: "/healthz" }), 3);
  assert.equal(valueOf(s, "chat_http_request_duration_seconds_count", { method: "GET", route: "/conversations/:id/messages" }), 2);
  assert.ok(valueOf(s, "chat_http_request_duration_seconds_sum", { method: "GET", route: "/conversations/:id/messages" }) > 0);
  const leaks = s.filter((x) => Object.values(x.labels).some((v) => v.includes(conversationId)));
  assert.deepEqual(leaks.map((x) => x.key), [], "a conversation id became a label value");
});

test("every REST 4xx is one chat_errors_total with a client code (ChatClientErrorRate subtracts the one from the other)", async () => {
  const s = (await eventually(async () => {
    const samples = (await scrape(node.url)).samples;
    return count(samples, { route: "unmatched" }) >= 1 ? samples : null;
  }, 5000, "the last request to be counted")) as Sample[];
  const clientErrors = s
    .filter((x) => x.name === "chat_errors_total" && x.labels.code !== "INTERNAL" && x.labels.code !== "UNAVAILABLE")
    .reduce((sum, x) => sum + x.value, 0);
  assert.equal(count(s, { status: "4xx" }), 3, "the 403, the 401 and the 404");
  assert.equal(clientErrors, 3, "one error per 4xx, and none other (this node had no socket traffic)");
  assert.equal(valueOf(s, "chat_errors_total", { code: "FORBIDDEN" }), 1);
  assert.equal(valueOf(s, "chat_errors_total", { code: "UNAUTHORIZED" }), 1);
  assert.equal(valueOf(s, "chat_errors_total", { code: "NOT_FOUND" }), 1);
});
