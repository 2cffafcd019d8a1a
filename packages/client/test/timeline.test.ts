/** The Timeline's bookkeeping in isolation: dedupe by id, order by seq, the watermark and gaps. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { MessageData } from "@chat/protocol";
import { Timeline } from "../src/index.ts";

const msg = (seq: number, id = `m${seq}`): MessageData => ({
  id,
  conversationId: "c1",
  senderId: "bob",
  message: `text ${seq}`,
  timestamp: new Date(0).toISOString(),
  seq,
});

describe("client: Timeline", () => {
  it("keeps one message per id, in seq order, whatever the arrival order", () => {
    const t = new Timeline("c1");
    t.anchor(0);
    assert.deepEqual(t.merge([msg(3), msg(1)]).map((m) => m.seq), [1, 3]);
    assert.deepEqual(t.merge([msg(2), msg(3), msg(1)]).map((m) => m.seq), [2]);
    assert.deepEqual(t.messages().map((m) => m.seq), [1, 2, 3]);
    assert.equal(t.merge([{ ...msg(4), conversationId: "other" }]).length, 0, "another conversation's message is ignored");
  });

  it("advances the watermark only over contiguous seqs and reports the gap", () => {
    const t = new Timeline("c1");
    t.anchor(10);
    t.merge([msg(11), msg(13)]);
    assert.equal(t.watermark, 11);
    assert.equal(t.hasGap, true);
    assert.equal(t.lastSeq, 13);
    t.merge([msg(12)]);
    assert.equal(t.watermark, 13);
    assert.equal(t.hasGap, false);
  });

  it("never lowers the watermark, and a message that arrived before the anchor counts", () => {
    const t = new Timeline("c1");
    t.merge([msg(6)]);
    t.anchor(5);
    assert.equal(t.watermark, 6);
    t.anchor(3);
    assert.equal(t.watermark, 6);
    assert.equal(t.findByClientMessageId("none"), undefined);
    t.merge([{ ...msg(7), clientMessageId: "abc" }]);
    assert.equal(t.findByClientMessageId("abc")?.seq, 7);
    assert.equal(t.oldestSeq, 6);
  });

  it("trims the oldest beyond its limit, never above the watermark, and takes them back only as an older page", () => {
    const t = new Timeline("c1", 3);
    t.anchor(0);
    t.hasOlder = false;
    t.merge([msg(1), msg(2), msg(3), msg(4), msg(5)]);
    assert.deepEqual(t.trim().map((m) => m.seq), [1, 2]);
    assert.deepEqual(t.messages().map((m) => m.seq), [3, 4, 5]);
    assert.equal(t.oldestSeq, 3, "the next older page starts before 3");
    assert.equal(t.hasOlder, true, "what was dropped is history again");
    assert.deepEqual(t.merge([msg(2)]), [], "a trimmed message does not come back live");
    assert.deepEqual(t.merge([msg(1), msg(2)], true).map((m) => m.seq), [1, 2], "it comes back as an older page");
    assert.equal(t.size, 5);

    // Above the watermark nothing is dropped: 7 and 8 mark a gap that catch-up must still close.
    const g = new Timeline("c1", 1);
    g.anchor(0);
    g.merge([msg(1), msg(2), msg(7), msg(8)]);
    assert.equal(g.watermark, 2);
    assert.deepEqual(g.trim().map((m) => m.seq), [1, 2]);
    assert.deepEqual(g.messages().map((m) => m.seq), [7, 8]);
    assert.equal(g.hasGap, true);
  });
});
