/**
 * The page on a lone node, as in single-node development (the node serves services/web/dist at
 * `/`): history loads the newest page, older pages load on scroll without moving the reader or
 * doubling a message.
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
});
