import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checkOutgoing } from "../src/outgoing.ts";

describe("client: checkOutgoing", () => {
  const code = (...args: Parameters<typeof checkOutgoing>) => checkOutgoing(...args)?.code;
  it("refuses what the node would refuse, with the node's codes", () => {
    assert.equal(code("c1", "", undefined, 10), "INVALID_PAYLOAD");
    assert.equal(code("c1", "\ud800", undefined, 10), "INVALID_PAYLOAD", "a lone surrogate");
    assert.equal(code("", "hi", undefined, 10), "INVALID_PAYLOAD");
    assert.equal(code("x".repeat(129), "hi", undefined, 10), "INVALID_PAYLOAD");
    assert.equal(code("c1", "hi", "x".repeat(65), 10), "INVALID_PAYLOAD");
    assert.equal(code("c1", "x".repeat(11), undefined, 10), "PAYLOAD_TOO_LARGE");
    assert.equal(code("c1", 42 as unknown as string, undefined, 10), "INVALID_PAYLOAD");
  });
  it("lets through what the node accepts", () => {
    assert.equal(code("c1", "x".repeat(10), "m".repeat(64), 10), undefined);
    assert.equal(code("x".repeat(128), " ", undefined, 10), undefined, "whitespace is a message to the node too");
  });
});
