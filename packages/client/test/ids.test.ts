/** The SDK's clientMessageIds: within the contract's 1..64 characters, unique, and sorted by time. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { newClientMessageId } from "../src/index.ts";

describe("client: newClientMessageId", () => {
  it("is 32 lowercase hex characters, the first 12 the time in milliseconds", () => {
    const now = Date.UTC(2026, 10, 26, 6, 30);
    const id = newClientMessageId(now);
    assert.match(id, /^[0-9a-f]{32}$/);
    assert.equal(parseInt(id.slice(0, 12), 16), now);
  });

  it("sorts by the time it was made, so the stores' idempotency index grows at its end", () => {
    const times = [0, 1, 999, 1_000, Date.UTC(2026, 0, 1), Date.UTC(2026, 0, 1) + 1, Date.UTC(2100, 0, 1)];
    const ids = times.map((t) => newClientMessageId(t));
    assert.deepEqual([...ids].sort(), ids);
  });

  it("differs within one millisecond (80 random bits)", () => {
    const ids = Array.from({ length: 1000 }, () => newClientMessageId(1_795_000_000_000));
    assert.equal(new Set(ids).size, ids.length);
  });
});
