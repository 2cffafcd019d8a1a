/**
 * The seed's manual browser test, automated: two users in two Chromium contexts, each pinned by
 * nginx's sticky cookie to a different node of a two-node cluster (Redis adapter between them).
 * Pinning: each context carries a `chat_sticky` value that nginx hashes to its node (found through
 * /healthz, which names the node); the page, its REST calls and its Socket.IO session all go
 * through nginx and land there, which the test checks on each node's chat_connected_sockets.
 * Screenshots of every step go to test-results/browser/; UPDATE_SCREENSHOT=1 refreshes
 * docs/screenshot.png.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import type { Browser, BrowserContext, Page, Route, WebSocketRoute } from "playwright-core";
import { REPO_ROOT, eventually, stopAll } from "@chat/test-kit";
import { startCluster, type Cluster } from "../../infra/cluster/cluster.ts";
import {
  buildWeb,
  connectedSockets,
  distinctIds,
  expectMessages,
  launchChromium,
  messageTexts,
  nodeOfPage,
  pinnedContext,
  recordStatus,
  shot,
  signIn,
  stickyValues,
  waitForStatus,
} from "./helpers.ts";

const TYPING_TIMEOUT_MS = 1500;

describe("browser: two users on two nodes through nginx", () => {
  let cluster: Cluster;
  let browser: Browser;
  let alice: Page;
  let bob: Page;
  let bobContext: BrowserContext;
  /** Bob's WebSockets pass through Playwright, so the test can cut them (the socket-blocked case). */
  const bobSockets: WebSocketRoute[] = [];
  let blockBobSockets = false;
  const expected: string[] = [];

  async function send(page: Page, text: string): Promise<void> {
    await page.getByTestId("message-input").fill(text);
    await page.getByTestId("message-input").press("Enter");
    expected.push(text);
  }

  before(async () => {
    buildWeb();
    cluster = await startCluster({ nodes: 2, env: { TYPING_TIMEOUT_MS: String(TYPING_TIMEOUT_MS) } });
    const [node1, node2] = cluster.nodes;
    assert.ok(node1 && node2);
    const sticky = await stickyValues(cluster.url, [node1.nodeId, node2.nodeId]);
    browser = await launchChromium();
    const aliceContext = await pinnedContext(browser, cluster.url, sticky.get(node1.nodeId) ?? "");
    bobContext = await pinnedContext(browser, cluster.url, sticky.get(node2.nodeId) ?? "");
    await bobContext.routeWebSocket(/\/socket\.io\//, (ws) => {
      if (blockBobSockets) {
        void ws.close();
        return;
      }
      ws.connectToServer();
      bobSockets.push(ws);
    });
    alice = await aliceContext.newPage();
    bob = await bobContext.newPage();
  });

  after(async () => {
    await browser?.close();
    await cluster?.stop();
    await stopAll();
  });

  it("pins each user to a different node", async () => {
    const [node1, node2] = cluster.nodes as [Cluster["nodes"][0], Cluster["nodes"][0]];
    await signIn(alice, cluster.url, "alice");
    assert.equal(await nodeOfPage(alice), node1.nodeId);
    await eventually(async () => (await connectedSockets(node1.url)) === 1 && (await connectedSockets(node2.url)) === 0, 10_000, "alice's socket on node-1");

    await alice.getByTestId("new-conversation-members").fill("bob");
    await alice.getByTestId("new-conversation-title").fill("Launch plan");
    await alice.getByTestId("new-conversation-submit").click();
    await alice.getByTestId("conversation-item").filter({ hasText: "Launch plan" }).waitFor();
    await alice.getByTestId("conversation-title").filter({ hasText: "Launch plan" }).waitFor();

    await signIn(bob, cluster.url, "bob");
    assert.equal(await nodeOfPage(bob), node2.nodeId);
    await eventually(async () => (await connectedSockets(node2.url)) === 1 && (await connectedSockets(node1.url)) === 1, 10_000, "bob's socket on node-2");
    await bob.getByTestId("conversation-item").filter({ hasText: "Launch plan" }).click();
    await bob.getByTestId("conversation-title").filter({ hasText: "Launch plan" }).waitFor();
    await alice.locator('[data-testid="presence-user"][data-user-id="bob"][data-online="true"]').waitFor();
  });

  it("shows a message sent in one window in the other, once and in order", async () => {
    await send(alice, "Morning! Draft is in the doc.");
    await send(alice, "Can you review section 2?");
    await send(bob, "On it, give me ten minutes.");
    await send(alice, "Thanks — à tout à l’heure!");
    await expectMessages(bob, expected, "bob's window");
    await expectMessages(alice, expected, "alice's window");
    assert.ok(await distinctIds(alice));
    assert.ok(await distinctIds(bob));
    await shot(alice, "01-messages-alice");
    await shot(bob, "01-messages-bob");
  });

  it("shows the typing dots in the other window; they clear after the timeout, and at once on send", async () => {
    const dots = alice.locator('[data-testid="typing-indicator"][data-active="true"]');
    const idle = alice.locator('[data-testid="typing-indicator"][data-active="false"]');
    await bob.getByTestId("message-input").pressSequentially("Looks go", { delay: 30 });
    await dots.waitFor();
    assert.equal(await alice.getByTestId("typing-text").textContent(), "bob is typing");
    await shot(alice, "02-typing-alice");
    if (process.env.UPDATE_SCREENSHOT === "1") {
      fs.copyFileSync(path.join(REPO_ROOT, "test-results/browser/02-typing-alice.png"), path.join(REPO_ROOT, "docs/screenshot.png"));
    }
    // Bob stops typing: the server's TYPING_TIMEOUT_MS later, the dots go.
    await idle.waitFor({ state: "attached", timeout: TYPING_TIMEOUT_MS * 10 });

    await bob.getByTestId("message-input").pressSequentially("od to me", { delay: 30 });
    await dots.waitFor();
    await bob.getByTestId("message-input").press("Enter");
    expected.push("Looks good to me");
    await alice.locator('[data-testid="message"] [data-testid="message-text"]').filter({ hasText: "Looks good to me" }).waitFor();
    // The message and the end of typing arrive together: no waiting for the timeout.
    assert.equal(await alice.getByTestId("typing-indicator").getAttribute("data-active"), "false");
    await shot(alice, "03-typing-cleared-alice");
  });

  it("shows the history without duplicates after a reload", async () => {
    await alice.reload();
    await waitForStatus(alice, "connected");
    await expectMessages(alice, expected, "alice's window after reload");
    assert.ok(await distinctIds(alice));
    await shot(alice, "04-reloaded-alice");
  });

  it("sends by REST while the socket is blocked, and the other window gets it", async () => {
    await bob.route("**/socket.io/**", (route) => route.abort());
    blockBobSockets = true;
    for (const ws of bobSockets.splice(0)) await ws.close();
    await waitForStatus(bob, "reconnecting");
    const restPosts: string[] = [];
    const onRequest = (req: { method(): string; url(): string }) => {
      if (req.method() === "POST" && /\/conversations\/[^/]+\/messages$/.test(req.url())) restPosts.push(req.url());
    };
    bob.on("request", onRequest);
    await send(bob, "Sent while my socket was blocked");
    await expectMessages(alice, expected, "alice's window, REST fallback");
    await expectMessages(bob, expected, "bob's window, REST fallback");
    assert.equal(restPosts.length, 1, "one REST post");
    bob.off("request", onRequest);
    await shot(bob, "05-rest-fallback-bob");

    blockBobSockets = false;
    await bob.unroute("**/socket.io/**");
    await waitForStatus(bob, "connected", 30_000);
    await expectMessages(bob, expected, "bob's window, socket back");
    assert.ok(await distinctIds(bob));
  });

  it("reconnects when a user's node is killed, losing and doubling nothing", async () => {
    const node1 = cluster.nodes[0];
    assert.ok(node1);
    const states = await recordStatus(alice);
    await node1.stop("SIGKILL");
    await waitForStatus(alice, "reconnecting");
    await shot(alice, "06-reconnecting-alice");
    await send(bob, "Sent while alice's node was down");
    await send(alice, "Sent by alice while her node was down");
    await waitForStatus(alice, "connected", 30_000);
    await expectMessages(alice, expected, "alice's window after failover");
    await expectMessages(bob, expected, "bob's window after failover");
    assert.ok(await distinctIds(alice));
    assert.ok(await distinctIds(bob));
    const seen = await states();
    assert.deepEqual(seen.slice(seen.indexOf("reconnecting")), ["reconnecting", "connected"], `states: ${seen.join(" → ")}`);
    assert.equal(await nodeOfPage(alice), cluster.nodes[1]?.nodeId, "nginx moved alice to the survivor");
    await shot(alice, "07-reconnected-alice");

    // Sends keep flowing both ways after failover.
    await send(bob, "Welcome back");
    await expectMessages(alice, expected, "alice's window, live after failover");
    assert.equal((await messageTexts(alice)).length, expected.length);
  });

  it("keeps a message sent while nothing reaches the node across a reload, shows it pending, and sends it once", async () => {
    // Neither the socket nor the REST fallback gets through; the page itself still loads.
    const postMessages = (route: Route) => (route.request().method() === "POST" ? route.abort() : route.continue());
    await bob.route("**/socket.io/**", (route) => route.abort());
    await bob.route("**/conversations/*/messages", postMessages);
    blockBobSockets = true;
    for (const ws of bobSockets.splice(0)) await ws.close();
    await waitForStatus(bob, "reconnecting");
    const text = "Typed while nothing got through";
    await bob.getByTestId("message-input").fill(text);
    await bob.getByTestId("message-input").press("Enter");
    await bob.getByTestId("message-pending").filter({ hasText: text }).waitFor({ timeout: 10_000 });

    await bob.reload(); // the outbox (IndexedDB) holds it; the node still cannot be reached
    await bob.getByTestId("message-pending").filter({ hasText: text }).waitFor({ timeout: 20_000 });
    await shot(bob, "08-pending-after-reload-bob");
    assert.deepEqual(await messageTexts(alice), expected, "nothing reached alice yet");

    blockBobSockets = false;
    await bob.unroute("**/socket.io/**");
    await bob.unroute("**/conversations/*/messages", postMessages);
    expected.push(text);
    await expectMessages(alice, expected, "alice's window, the restored send");
    await expectMessages(bob, expected, "bob's window, the restored send");
    assert.ok(await distinctIds(alice));
    assert.ok(await distinctIds(bob));
  });
});
