/**
 * The page on a lone node, as in single-node development (the node serves services/web/dist at
 * `/`): history loads the newest page, older pages load on scroll without moving the reader or
 * doubling a message. A busy conversation keeps at most the SDK's 1000 messages on the page; paging
 * back holds what the reader asked for until they are at the newest messages again. Then the
 * page's resilience and layout: a conversation opened offline, a send failed while another
 * conversation was open, a stale presence snapshot, long titles and ids, the message box's limit
 * (the node's, from `GET /limits`);
 * the URL (Back/Forward, malformed and foreign links, sign-out), tokens that are not JWTs or have
 * expired, user ids holding bidi controls, and messages sent as typed.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { Browser, Page } from "playwright-core";
import { api, eventually, mintToken, startNode, stopAll, type NodeHandle } from "@chat/test-kit";
import { buildWeb, distinctIds, expectMessages, launchChromium, messageTexts, shot, signIn, waitForStatus } from "./helpers.ts";

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

  /** A fresh browser context (its own sessionStorage) with `userId` signed in on the page of `url` (the suite's node unless given). */
  async function signedIn(userId: string, viewport = { width: 900, height: 600 }, url = node.url) {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    await signIn(page, url, userId);
    return { context, page };
  }

  /** A conversation created by bob, with optional messages from him. */
  async function conversation(members: string[], title: string, ...messages: string[]): Promise<string> {
    const bob = api(node.url, await mintToken("bob"));
    const conv = await bob.post<{ id: string }>("/conversations", { members, title });
    assert.equal(conv.status, 201);
    for (const message of messages) assert.equal((await bob.post(`/conversations/${conv.body.id}/messages`, { message })).status, 201);
    return conv.body.id;
  }
  const open = (page: Page, title: string) => page.getByTestId("conversation-item").filter({ hasText: title }).click();

  it("loads the newest page, then older pages on scroll up, in order and once", async () => {
    const bob = api(node.url, await mintToken("bob"));
    const conv = await bob.post<{ id: string }>("/conversations", { members: ["alice"], title: "Long thread" });
    assert.equal(conv.status, 201);
    const all = Array.from({ length: 130 }, (_, i) => `line ${i + 1}`);
    for (const message of all) assert.equal((await bob.post(`/conversations/${conv.body.id}/messages`, { message })).status, 201);

    const { context, page } = await signedIn("alice");
    await page.getByTestId("conversation-item").filter({ hasText: "Long thread" }).click();
    await page.locator('[data-testid="message"][data-seq="130"]').waitFor();
    assert.deepEqual(await messageTexts(page), all.slice(80), "the newest 50");
    // The line above the messages follows the join's answer, which may land just after the messages are drawn.
    await page.locator('[data-testid="history-status"][data-has-older="true"]').waitFor({ timeout: 10_000 });
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

    const { context, page } = await signedIn("carol");
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

  it("a conversation opened while offline loads when the network returns, and shows live messages and replies", async () => {
    await conversation(["dave"], "Off first");
    const id = await conversation(["dave"], "Off second", "y1");
    const { context, page } = await signedIn("dave");
    await open(page, "Off first");
    await context.setOffline(true);
    await waitForStatus(page, "offline");
    await open(page, "Off second");
    const status = page.getByTestId("history-status");
    await page.locator('[data-testid="history-status"][data-failed="true"]').waitFor();
    assert.doesNotMatch((await status.textContent()) ?? "", /Beginning/);
    await context.setOffline(false);
    await waitForStatus(page, "connected");
    await expectMessages(page, ["y1"], "history after the network returned");
    // The failed mark clears once the page has the loaded page (it may draw the message a moment before).
    await page.locator('[data-testid="history-status"][data-failed="false"]').waitFor({ timeout: 10_000 });
    const bob = api(node.url, await mintToken("bob"));
    assert.equal((await bob.post(`/conversations/${id}/messages`, { message: "y2" })).status, 201);
    await page.getByTestId("message-input").fill("reply");
    await page.getByTestId("message-input").press("Enter");
    await expectMessages(page, ["y1", "y2", "reply"], "live message and own reply");
    await context.close();
  });

  it("shows a send that failed while another conversation was open as not sent, with Retry, on coming back", async () => {
    await conversation(["erin"], "Fail here");
    await conversation(["erin"], "Fail elsewhere");
    const { context, page } = await signedIn("erin");
    await open(page, "Fail here");
    // Offline (the send goes by REST), and the REST post refused once the user looked elsewhere.
    await context.setOffline(true);
    await waitForStatus(page, "offline");
    let release = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    let refused = () => {};
    const wasRefused = new Promise<void>((resolve) => (refused = resolve));
    await page.route(/\/conversations\/[^/]+\/messages$/, async (route) => {
      if (route.request().method() !== "POST") return route.fallback();
      await released;
      await route.fulfill({ status: 403, contentType: "application/json", body: JSON.stringify({ error: { code: "FORBIDDEN", message: "refused by the test" } }) });
      refused();
    });
    await page.getByTestId("message-input").fill("important");
    await page.getByTestId("message-input").press("Enter");
    await page.getByTestId("message-pending").waitFor();
    await open(page, "Fail elsewhere");
    release();
    await wasRefused;
    await open(page, "Fail here");
    const failed = page.locator('[data-testid="message-pending"][data-failed="true"]');
    await failed.waitFor();
    assert.equal(await failed.getByTestId("message-text").textContent(), "important");
    assert.equal(await failed.getByTestId("retry-send").count(), 1);
    await context.close();
  });

  it("never lets a presence snapshot answered before an event undo it", async () => {
    await conversation(["frank"], "Presence race");
    const { context, page } = await signedIn("frank");
    let release = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    await page.route(/\/presence$/, async (route) => {
      const stale = await route.fetch(); // read now: bob is not in the room yet
      await released;
      await route.fulfill({ response: stale });
    });
    await open(page, "Presence race");
    const bobOnline = page.locator('[data-testid="presence-user"][data-user-id="bob"][data-online="true"]');
    const bobContext = await browser.newContext();
    const bobPage = await bobContext.newPage();
    await signIn(bobPage, node.url, "bob");
    await open(bobPage, "Presence race");
    await bobOnline.waitFor();
    const answered = page.waitForResponse(/\/presence$/);
    release();
    await answered;
    await page.waitForTimeout(200);
    assert.equal(await bobOnline.count(), 1, "bob still online after the stale snapshot");
    await bobContext.close();
    await context.close();
  });

  it("keeps the send box on screen with a 200-character title, a 128-character member and 13 members; limits the box to 4000", async () => {
    const longId = `m${"x".repeat(127)}`;
    const members = ["gina", longId, ...Array.from({ length: 10 }, (_, i) => `member.${i}.abcdefgh`)];
    await conversation(members, "T".repeat(200));
    const { context, page } = await signedIn("gina", { width: 1000, height: 650 });
    await page.getByTestId("conversation-item").first().click();
    await page.getByTestId("presence-user").nth(12).waitFor();
    const box = await page.getByTestId("send-button").boundingBox();
    assert.ok(box && box.x + box.width <= 1000, `send button inside the window (right edge ${box ? box.x + box.width : "?"})`);
    assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 1000, "no sideways scrolling");
    await shot(page, "12-long-title-many-members");
    const input = page.getByTestId("message-input");
    assert.equal(await input.getAttribute("maxlength"), "4000");
    await input.fill("a".repeat(4001));
    assert.equal((await input.inputValue()).length, 4000);
    await context.close();
  });

  it("sizes the message box from the node's GET /limits: a MAX_MESSAGE_LENGTH above the default is usable", async () => {
    const roomy = await startNode({ RATE_LIMIT_DISABLED: "1", MAX_MESSAGE_LENGTH: "6000" });
    const owner = api(roomy.url, await mintToken("lena"));
    const conv = await owner.post<{ id: string }>("/conversations", { members: ["bob"], title: "Roomy" });
    assert.equal(conv.status, 201);
    const { context, page } = await signedIn("lena", undefined, roomy.url);
    await page.getByTestId("conversation-item").filter({ hasText: "Roomy" }).click();
    const input = page.getByTestId("message-input");
    await page.locator('[data-testid="message-input"][maxlength="6000"]').waitFor();
    await input.fill("b".repeat(6001));
    assert.equal((await input.inputValue()).length, 6000);
    await input.press("Enter");
    await eventually(async () => (await owner.get<{ messages: { message: string }[] }>(`/conversations/${conv.body.id}/messages`)).body.messages.some((m) => m.message.length === 6000), 10_000, "the 6000-character message stored");
    await context.close();
  });

  const activeItem = (page: Page, id: string) => page.locator(`[data-testid="conversation-item"][data-conversation-id="${id}"][data-active="true"]`);
  const hashIs = (page: Page, hash: string) => page.waitForFunction((h) => location.hash === h, hash);

  it("follows Back, Forward and an edited hash; ignores a malformed link", async () => {
    const first = await conversation(["kate"], "Hash first", "h1");
    const second = await conversation(["kate"], "Hash second", "h2");
    const context = await browser.newContext({ viewport: { width: 900, height: 600 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await signIn(page, node.url, "kate");
    await open(page, "Hash first");
    await activeItem(page, first).waitFor();
    await expectMessages(page, ["h1"], "the first conversation");
    await open(page, "Hash second");
    await activeItem(page, second).waitFor();
    await expectMessages(page, ["h2"], "the second conversation");

    await page.goBack();
    await activeItem(page, first).waitFor();
    await page.getByTestId("conversation-title").filter({ hasText: "Hash first" }).waitFor();
    await expectMessages(page, ["h1"], "after Back");
    await page.goForward();
    await activeItem(page, second).waitFor();
    await expectMessages(page, ["h2"], "after Forward");

    await page.evaluate((id) => (location.hash = `#/c/${encodeURIComponent(id)}`), first);
    await activeItem(page, first).waitFor();
    await expectMessages(page, ["h1"], "after editing the hash");

    await page.evaluate(() => (location.hash = "#/c/%E0%A4%A"));
    await hashIs(page, `#/c/${encodeURIComponent(first)}`);
    await activeItem(page, first).waitFor();
    assert.deepEqual(errors, [], "no error thrown in the page");
    await context.close();
  });

  it("signing out takes the conversation out of the URL: the next user of the tab does not land on it", async () => {
    await conversation(["liam"], "Liam only");
    await conversation(["mia"], "Mia own");
    const { context, page } = await signedIn("liam");
    await open(page, "Liam only");
    await page.waitForFunction(() => location.hash.startsWith("#/c/"));
    await page.getByTestId("sign-out").click();
    await page.getByTestId("login-view").waitFor();
    await hashIs(page, "");
    await page.getByTestId("login-user").fill("mia");
    await page.getByTestId("login-submit").click();
    await page.getByTestId("conversation-item").filter({ hasText: "Mia own" }).waitFor();
    await waitForStatus(page, "connected");
    await page.getByTestId("no-conversation").waitFor();
    assert.equal(await page.getByTestId("conversation-view").isHidden(), true, "no conversation opened");
    assert.equal(await page.getByTestId("error-banner").isHidden(), true, "no FORBIDDEN");
    await context.close();
  });

  it("a link to a conversation the user is not in, or to none, shows an error without a composer and leaves the URL", async () => {
    const foreign = await conversation(["nora"], "Not for oscar");
    await conversation(["oscar"], "Oscar own", "o1");
    const context = await browser.newContext({ viewport: { width: 900, height: 600 } });
    const page = await context.newPage();
    await signIn(page, `${node.url}/#/c/${foreign}`, "oscar");
    await page.locator('[data-testid="conversation-error"][data-code="FORBIDDEN"]').waitFor();
    await page.getByTestId("send-form").waitFor({ state: "hidden" });
    await hashIs(page, "");
    await shot(page, "13-foreign-link");

    await page.evaluate((id) => (location.hash = `#/c/${id}`), randomUUID());
    await page.locator('[data-testid="conversation-error"][data-code="NOT_FOUND"]').waitFor();
    await page.getByTestId("send-form").waitFor({ state: "hidden" });
    await hashIs(page, "");

    await open(page, "Oscar own");
    await expectMessages(page, ["o1"], "an own conversation after the refused one");
    await page.getByTestId("send-form").waitFor();
    await page.getByTestId("conversation-error").waitFor({ state: "hidden" });
    await context.close();
  });

  it("drops a token that is not a JWT; an expired token, at start or while the page is open, says the session expired", async () => {
    const context = await browser.newContext({ viewport: { width: 900, height: 600 } });
    const page = await context.newPage();
    await page.goto(node.url);
    const store = (token: string) => page.evaluate((t) => sessionStorage.setItem("chat.token", t), token);
    const stored = () => page.evaluate(() => sessionStorage.getItem("chat.token"));
    const banner = (text: string, timeout = 10_000) => page.getByTestId("error-banner").filter({ hasText: text }).waitFor({ timeout });
    const expiredText = "Your session expired: sign in again";

    await store("not-a-jwt");
    await page.reload();
    await banner("That token is not a JWT.");
    await page.getByTestId("login-view").waitFor();
    assert.equal(await stored(), null, "the bad token is not kept");

    await store(await mintToken("pat", { expiresInSec: -60 }));
    await page.reload();
    await banner(expiredText);
    await page.getByTestId("login-view").waitFor();
    assert.equal(await stored(), null, "the expired token is not kept");

    await store(await mintToken("pat", { expiresInSec: 4 }));
    await page.reload();
    await page.getByTestId("current-user").filter({ hasText: "pat" }).waitFor();
    await banner(expiredText, 15_000);
    await page.getByTestId("login-view").waitFor();
    assert.equal(await stored(), null, "the token that expired is not kept");
    await context.close();
  });

  it("keeps a user id's bidi controls inside its name, and sends a message as typed", async () => {
    const rtl = "\u202Eevil";
    await conversation(["quinn", rtl], "Bidi room");
    const { context, page } = await signedIn("quinn");
    await open(page, "Bidi room");
    const rtlContext = await browser.newContext({ viewport: { width: 900, height: 600 } });
    const rtlPage = await rtlContext.newPage();
    await signIn(rtlPage, node.url, rtl);
    await open(rtlPage, "Bidi room");
    await page.locator(`[data-testid="presence-user"][data-user-id="${rtl}"][data-online="true"]`).waitFor();

    await rtlPage.getByTestId("message-input").pressSequentially("hi", { delay: 30 });
    await page.locator(`[data-testid="typing-indicator"][data-active="true"][data-users="${rtl}"]`).waitFor();
    assert.equal(await page.getByTestId("typing-text").textContent(), `${rtl} is typing`);
    assert.equal(await page.locator('[data-testid="typing-text"] bdi').textContent(), rtl, "the name is isolated from the words");

    // Leading spaces and indentation survive; only a blank message is refused.
    const typed = "  indented\n    code  ";
    await rtlPage.getByTestId("message-input").fill(typed);
    await rtlPage.getByTestId("message-input").press("Enter");
    await expectMessages(page, [typed], "the message as typed");
    await page.getByTestId("message-input").fill("   \n  ");
    await page.getByTestId("message-input").press("Enter");
    assert.equal(await page.getByTestId("message-pending").count(), 0, "a blank message is not sent");

    const bidiOf = (locator: ReturnType<Page["locator"]>) => locator.evaluate((e) => getComputedStyle(e).unicodeBidi);
    assert.equal(await bidiOf(page.locator(`[data-testid="message"][data-sender="${rtl}"] [data-testid="message-sender"]`)), "isolate");
    assert.equal(await bidiOf(page.locator(`[data-testid="presence-user"][data-user-id="${rtl}"] bdi`)), "isolate");
    assert.equal(await bidiOf(rtlPage.locator('[data-testid="current-user"] bdi')), "isolate");
    assert.equal(await bidiOf(rtlPage.locator('[data-testid="conversation-item"] .conversation-name bdi')), "isolate");
    await shot(page, "14-bidi-name");
    await rtlContext.close();
    await context.close();
  });
});
