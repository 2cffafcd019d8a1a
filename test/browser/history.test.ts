/**
 * The page on a lone node, as in single-node development (the node serves services/web/dist at
 * `/`): history loads the newest page, older pages load on scroll without moving the reader or
 * doubling a message. A busy conversation keeps at most the SDK's 1000 messages on the page; paging
 * back holds what the reader asked for until they are at the newest messages again.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { api, eventually, mintToken, startNode, stopAll, type NodeHandle } from "@chat/test-kit";
import { buildWeb, distinctIds, launchChromium, messageTexts, shot, signIn } from "./helpers.ts";

describe("browser: history on a lone node", () => {
  let node: NodeHandle;
  let browser: Browser;

  before(async () => {
    buildWeb();
    node = await startNode({ RATE_LIMIT_DISABLED: "1" });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await stopAll();
  });

  it("loads the newest page, then older pages on scroll up, in order and once", async () => {
    const bob = api(node.url, await mintToken("bob"));
    const conv = await bob.post<{ id: string }>("/conversations", { members: ["alice"], title: "Long thread" });
    assert.equal(conv.status, 201);
    const all = Array.from({ length: 130 }, (_, i) => `line ${i + 1}`);
    for (const message of all) assert.equal((await bob.post(`/conversations/${conv.body.id}/messages`, { message })).status, 201);

    const context = await browser.newContext({ viewport: { width: 900, height: 600 } });
    const page = await context.newPage();
    await signIn(page, node.url, "alice");
    await page.getByTestId("conversation-item").filter({ hasText: "Long thread" }).click();
    await page.locator('[data-testid="message"][data-seq="130"]').waitFor();
    assert.deepEqual(await messageTexts(page), all.slice(80), "the newest 50");
    assert.equal(await page.getByTestId("history-status").getAttribute("data-has-older"), "true");
    await shot(page, "10-history-newest");

    const list = page.getByTestId("message-list");
    for (const shown of [100, 130]) {
      await list.evaluate((el) => el.scrollTo({ top: 0 }));
      await eventually(async () => (await page.getByTestId("message").count()) === shown, 10_000, `${shown} messages after scrolling up`);
      // The reader's place is kept: the list did not jump back to its top.
      assert.ok((await list.evaluate((el) => el.scrollTop)) > 0, "scroll position kept after inserting older messages");
    }
    assert.deepEqual(await messageTexts(page), all);
    assert.ok(await distinctIds(page));
    assert.equal(await page.getByTestId("history-status").getAttribute("data-has-older"), "false");
    await shot(page, "11-history-all");
    await context.close();
  });

  it("holds at most 1000 messages of a busy conversation, pages the dropped ones back, and trims again at the bottom", async () => {
    const bob = api(node.url, await mintToken("bob"));
    const conv = await bob.post<{ id: string }>("/conversations", { members: ["carol"], title: "Busy room" });
    assert.equal(conv.status, 201);
    const post = async (message: string) => assert.equal((await bob.post(`/conversations/${conv.body.id}/messages`, { message })).status, 201);
    for (let i = 1; i <= 50; i++) await post(`m${i}`);

    const context = await browser.newContext({ viewport: { width: 900, height: 600 } });
    const page = await context.newPage();
    await signIn(page, node.url, "carol");
    await page.getByTestId("conversation-item").filter({ hasText: "Busy room" }).click();
    await page.locator('[data-testid="message"][data-seq="50"]').waitFor();
    for (let i = 51; i <= 1010; i++) await post(`m${i}`);
    await page.locator('[data-testid="message"][data-seq="1010"]').waitFor();
    const seqsShown = () => page.getByTestId("message").evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset.seq)));
    await eventually(async () => (await page.getByTestId("message").count()) === 1000, 10_000, "the page to hold 1000 messages");
    let shown = await seqsShown();
    assert.equal(shown[0], 11, "the oldest ten were dropped");
    assert.equal(shown.at(-1), 1010);
    assert.equal(await page.getByTestId("history-status").getAttribute("data-has-older"), "true");

    // Scrolling to the top pages the dropped ones back.
    const list = page.getByTestId("message-list");
    await list.evaluate((el) => el.scrollTo({ top: 0 }));
    await eventually(async () => (await page.getByTestId("message").count()) === 1010, 10_000, "the ten older messages back");
    assert.equal(await page.getByTestId("history-status").getAttribute("data-has-older"), "false");
    assert.ok(await distinctIds(page));

    // Back at the bottom, the next message trims to 1000 again.
    await list.evaluate((el) => el.scrollTo({ top: el.scrollHeight }));
    await post("m1011");
    await page.locator('[data-testid="message"][data-seq="1011"]').waitFor();
    await eventually(async () => (await page.getByTestId("message").count()) === 1000, 10_000, "1000 messages again");
    shown = await seqsShown();
    assert.deepEqual([shown[0], shown.at(-1)], [12, 1011]);
    assert.equal(await page.getByTestId("history-status").getAttribute("data-has-older"), "true");
    await context.close();
  });
});
