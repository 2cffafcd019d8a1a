/** `GET /limits`: a node's limits for clients, authenticated like every REST call but the ops endpoints. */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { api, closeAllSockets, mintToken, startNode, stopAll } from "@chat/test-kit";
import { Limits, type ServerLimits } from "@chat/protocol";
import { RATE_DEFAULTS, RATE_SCOPES } from "../src/config.ts";

describe("GET /limits", () => {
  after(async () => {
    closeAllSockets();
    await stopAll();
  });

  it("answers the node's MAX_MESSAGE_LENGTH and TYPING_TIMEOUT_MS, and the contract's fixed bounds", async () => {
    const node = await startNode({ MAX_MESSAGE_LENGTH: "321", TYPING_TIMEOUT_MS: "1234", MAX_CONNECTIONS_PER_USER: "7", RATE_JOIN_PER_SEC: "2.5", RATE_JOIN_BURST: "9" });
    const res = await api(node.url, await mintToken("lim-alice")).get<ServerLimits>("/limits");
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {
      maxMessageLength: 321,
      typingTimeoutMs: 1234,
      clientMessageIdMaxLength: 64,
      idMaxLength: 128,
      titleMaxLength: Limits.titleMaxLength,
      membersMax: Limits.membersMax,
      pageMax: 200,
      missedMax: 200,
      maxConnectionsPerUser: 7,
      rateLimits: {
        disabled: false,
        clusterWide: false,
        scopes: Object.fromEntries(RATE_SCOPES.map((s) => [s, s === "join" ? { perSec: 2.5, burst: 9 } : { perSec: RATE_DEFAULTS[s].perSec, burst: RATE_DEFAULTS[s].burst }])),
      },
    });
    // The limit it names is the one the node enforces.
    const conv = await api(node.url, await mintToken("lim-alice")).post<{ id: string }>("/conversations", { members: ["lim-bob"] });
    assert.equal(conv.status, 201);
    const send = async (n: number) => (await api(node.url, await mintToken("lim-alice")).post(`/conversations/${conv.body.id}/messages`, { message: "x".repeat(n) })).status;
    assert.deepEqual([await send(res.body.maxMessageLength), await send(res.body.maxMessageLength + 1)], [201, 413]);
  });

  it("refuses a caller without a token: 401 UNAUTHORIZED", async () => {
    const node = await startNode({});
    const res = await api(node.url).get<{ error: { code: string } }>("/limits");
    assert.equal(res.status, 401);
    assert.equal(res.body.error.code, "UNAUTHORIZED");
  });
});
