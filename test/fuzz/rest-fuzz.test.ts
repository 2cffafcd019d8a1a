/**
 * Property-based fuzzing of every REST route against a real node: generated hostile paths, path
 * parameters, query strings, bodies, content types and Authorization headers (fast-check), from an
 * attacker with a valid token, beside honest members listening by socket. Properties: every answer
 * is a contract status with the contract's error shape, never a 5xx; the node keeps serving;
 * nothing is stored or broadcast from a refused request; honest clients lose nothing. Bounded in
 * runs and time; the seed is printed (FUZZ_SEED replays it).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ERROR_CODES, type MessageData } from "@chat/protocol";
import { closeAllSockets, mintToken, sleep, startNode, stopAll, type NodeHandle } from "@chat/test-kit";
import { assertNothingLeaked, eventPayload, fuzzSeed, honestRoundTrip, hostileValue, setScene, type Scene } from "./fuzz-kit.ts";

const ATTACKER = "mallory";
const STATUSES = new Set([200, 201, 400, 401, 403, 404, 413, 415, 429]);
/** Node's HTTP parser answers an over-long URL or header block itself, before Fastify: 431, without the contract's body. */
const HTTP_LAYER = 431;

describe("REST fuzzing", () => {
  let node: NodeHandle;
  let scene: Scene;
  let token: string;
  const accepted = new Set<string>();

  before(async () => {
    node = await startNode({ RATE_LIMIT_DISABLED: "1", MAX_MESSAGE_LENGTH: "1000" });
    scene = await setScene(node.url, ATTACKER);
    token = await mintToken(ATTACKER);
  });
  after(async () => {
    closeAllSockets();
    await stopAll();
  });

  it("every route with hostile paths, queries, bodies and headers: contract answers, nothing leaks", async () => {
    const seed = fuzzSeed("REST routes");
    const ids = [scene.shared.id, scene.foreign.id, "no-such-conversation"];
    const pathId = fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...ids) },
      { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map(encodeURIComponent) },
      { weight: 1, arbitrary: fc.constantFrom("%", "%zz", "%00", "..", "%2e%2e%2f", "a/b", "%ED%A0%80", "x".repeat(600), "__proto__", "constructor") },
    );
    const query = fc.oneof(
      fc.constant(""),
      fc.record({ limit: hostileValue(20), before: hostileValue(20), after: hostileValue(20) }, { requiredKeys: [] }).map((q) => {
        const p = new URLSearchParams();
        for (const [k, v] of Object.entries(q)) p.append(k, typeof v === "string" ? v : JSON.stringify(v));
        return p.size ? `?${p}` : "";
      }),
      fc.string({ maxLength: 60 }).map((s) => `?${s}`),
      fc.constantFrom("?limit=1&limit=2", "?limit=0", "?limit=201", "?after=-1", "?before=1e3", "?limit=%", "?__proto__[x]=1"),
    );
    const routes = fc.oneof(
      fc.tuple(fc.constant("POST"), fc.constant("/conversations"), fc.constant("create")),
      fc.tuple(fc.constant("GET"), fc.constant("/conversations"), fc.constant("")),
      fc.tuple(fc.constant("GET"), pathId.map((id) => `/conversations/${id}`), fc.constant("")),
      fc.tuple(fc.constant("GET"), pathId.map((id) => `/conversations/${id}/messages`), fc.constant("")),
      fc.tuple(fc.constant("POST"), pathId.map((id) => `/conversations/${id}/messages`), fc.constant("sendMessage")),
      fc.tuple(fc.constant("GET"), pathId.map((id) => `/conversations/${id}/presence`), fc.constant("")),
      fc.tuple(fc.constant("GET"), fc.constant("/limits"), fc.constant("")),
      fc.tuple(fc.constant("POST"), fc.constant("/dev/token"), fc.constant("devToken")), // on: test nodes run with DEV_INSECURE_TOKENS
      fc.tuple(fc.constantFrom("PUT", "DELETE", "PATCH", "POST", "GET"), fc.string({ maxLength: 30 }).map((s) => `/${encodeURIComponent(s)}`), fc.constant("")),
    );
    const body = (kind: string) =>
      fc.oneof(
        { weight: 3, arbitrary: eventPayload(kind === "create" ? "createConversation" : "postMessage", ids, [ATTACKER, "alice", "bob"], 1000).map((b) => JSON.stringify(b)) },
        { weight: kind === "devToken" ? 4 : 0, arbitrary: fc.record({ userId: fc.oneof(fc.string({ maxLength: 130 }), hostileValue(200)) }, { requiredKeys: [] }).map((b) => JSON.stringify(b)) },
        { weight: 1, arbitrary: kind === "create" ? fc.record({ members: fc.oneof(fc.array(fc.string({ maxLength: 20 }), { maxLength: 5 }), hostileValue(50)), title: hostileValue(300) }, { requiredKeys: [] }).map((b) => JSON.stringify(b)) : fc.constant("{}") },
        { weight: 1, arbitrary: fc.string({ maxLength: 200 }) }, // not JSON at all
        { weight: 1, arbitrary: fc.constantFrom("", "null", "[]", "{", '{"message":', "\u0000", '{"__proto__":{"members":["x"]}}', JSON.stringify({ message: "x".repeat(600_000) })) },
      );
    const contentType = fc.oneof(
      { weight: 5, arbitrary: fc.constant("application/json") },
      { weight: 1, arbitrary: fc.constantFrom("application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=latin1", "") },
    );
    const auth = fc.oneof(
      { weight: 8, arbitrary: fc.constant("valid") },
      { weight: 1, arbitrary: fc.constantFrom("", "Bearer", "Bearer ", "Basic YTpi", "bearer x.y.z", `Bearer ${"a".repeat(9000)}`) },
      { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map((s) => `Bearer ${s.replace(/[\r\n]/g, "")}`) },
    );
    const request = routes.chain(([method, path, kind]) => fc.tuple(fc.constant(method), fc.constant(path), fc.constant(kind), query, method === "POST" ? body(kind).map((b): string | undefined => b) : fc.constant(undefined), contentType, auth));

    let runs = 0;
    const outcomes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(request, async ([method, path, kind, q, payload, type, authorization]) => {
        runs++;
        const headers: Record<string, string> = {};
        if (authorization === "valid") headers.authorization = `Bearer ${token}`;
        else if (authorization) headers.authorization = authorization;
        if (payload !== undefined && type) headers["content-type"] = type;
        const res = await fetch(`${node.url}${path}${q}`, { method, headers, body: payload });
        const text = await res.text();
        const what = `${method} ${`${path}${q}`.slice(0, 300)} -> ${res.status} ${text.slice(0, 200)}`;
        if (res.status === HTTP_LAYER) return void outcomes.set("431", (outcomes.get("431") ?? 0) + 1);
        assert.ok(STATUSES.has(res.status), what);
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          assert.fail(`not JSON: ${what}`);
        }
        if (res.status >= 400) {
          const code = (json as { error?: { code?: string } }).error?.code;
          assert.ok(code !== undefined && (ERROR_CODES as readonly string[]).includes(code), `contract error shape: ${what}`);
        }
        outcomes.set(`${kind || method} ${res.status}`, (outcomes.get(`${kind || method} ${res.status}`) ?? 0) + 1);
        if (kind === "sendMessage" && (res.status === 201 || res.status === 200)) {
          const m = json as MessageData;
          assert.equal(m.senderId, ATTACKER, "a stored message carries the token's user");
          assert.equal(m.conversationId, scene.shared.id, "only the attacker's own conversation accepts its sends");
          accepted.add(m.id);
        }
        if (runs % 25 === 0) await honestRoundTrip(scene, `honest rest ${runs}`);
      }),
      { seed, numRuns: 400, interruptAfterTimeLimit: 25_000, markInterruptAsFailure: false },
    );
    console.log(`REST routes: ${runs} runs, ${JSON.stringify(Object.fromEntries([...outcomes].sort()))}`);
    assert.ok(runs >= 50, `ran ${runs} cases`);
    await sleep(300); // only to let anything that would leak arrive
    await assertNothingLeaked(node.url, scene, ATTACKER, accepted);
  });
});
