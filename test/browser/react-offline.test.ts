/**
 * @chat/react in Debian's Chromium against a real node: two browser contexts chat through a page
 * built on the hooks; one goes offline, sends, reloads (its message waiting in IndexedDB), comes
 * back, and the message arrives once, with the clientMessageId it had before the reload.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { build } from "esbuild";
import type { Browser, BrowserContext, Page } from "playwright-core";
import type { MessageData } from "@chat/protocol";
import { REPO_ROOT, api, eventually, freePort, mintToken, startNode, stopAll, tempDir, type NodeHandle } from "@chat/test-kit";
import { startProxy, type TcpProxy } from "../../packages/client/test/proxy.ts";
import { launchChromium, shot } from "./helpers.ts";

const WAIT = 30_000;

describe("@chat/react in Chromium: offline, reload, back", () => {
  let node: NodeHandle;
  let proxy: TcpProxy;
  let server: http.Server;
  let pageOrigin: string;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  before(async () => {
    const port = await freePort();
    pageOrigin = `http://127.0.0.1:${port}`;
    node = await startNode({ RATE_LIMIT_DISABLED: "1", CORS_ORIGINS: pageOrigin });
    proxy = await startProxy(node.port);
    const www = tempDir("chat-react-page-");
    await build({
      entryPoints: [path.join(REPO_ROOT, "packages/react/test/app/main.ts")],
      outfile: path.join(www, "app.js"),
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      define: { "process.env.NODE_ENV": '"production"' },
      logLevel: "warning",
    });
    const html = `<!doctype html><meta charset="utf-8"><title>react chat</title><div id="root"></div><script type="module" src="/app.js"></script>`;
    server = http.createServer((req, res) => {
      const js = req.url?.startsWith("/app.js");
      res.writeHead(200, { "content-type": js ? "text/javascript" : "text/html", "cache-control": "no-store" });
      res.end(js ? fs.readFileSync(path.join(www, "app.js")) : html);
    });
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    browser = await launchChromium();
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
    await proxy?.close();
    await stopAll();
  });

  async function openChat(userId: string, nodeUrl: string, conversationId: string): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    const hash = new URLSearchParams({ url: nodeUrl, token: await mintToken(userId), conversation: conversationId });
    await page.goto(`${pageOrigin}/#${hash.toString()}`);
    await page.waitForFunction(() => document.getElementById("state")?.textContent === "connected", undefined, { timeout: WAIT });
    return { context, page };
  }

  const texts = (page: Page) => page.$$eval("#messages li", (lis) => lis.map((li) => li.textContent ?? ""));

  it("delivers a message sent offline exactly once after a reload", async () => {
    const conv = (await api(node.url, await mintToken("alice")).post<{ id: string }>("/conversations", { members: ["bob"] })).body;
    const alice = await openChat("alice", node.url, conv.id);
    // Bob reaches the node through a proxy the test can cut, so that the node stays unreachable
    // for him across the reload (a reload needs the network back for the page itself).
    const bob = await openChat("bob", proxy.url, conv.id);

    await alice.page.fill("#text", "hello bob");
    await alice.page.click("#send");
    await bob.page.waitForFunction(() => document.getElementById("messages")?.textContent?.includes("alice: hello bob"), undefined, { timeout: WAIT });
    await eventually(async () => (await bob.page.textContent("#online"))?.split(",").sort().join(",") === "alice,bob", WAIT, "bob to see alice online");

    proxy.block();
    await bob.context.setOffline(true);
    await bob.page.waitForFunction(() => document.getElementById("state")?.textContent !== "connected", undefined, { timeout: WAIT });
    await bob.page.fill("#text", "sent while offline");
    await bob.page.click("#send");
    await bob.page.waitForSelector('#outbox li[data-state="pending"]', { timeout: WAIT });
    const cmid = await bob.page.getAttribute("#outbox li", "data-cmid");
    assert.ok(cmid, "the pending message has a clientMessageId");
    await shot(bob.page, "react-offline-pending");

    await bob.context.setOffline(false);
    await bob.page.reload();
    // After the reload the message is still there, from IndexedDB, still pending: the node is unreachable.
    await bob.page.waitForSelector(`#outbox li[data-cmid="${cmid}"]`, { timeout: WAIT });
    assert.equal(await bob.page.getAttribute(`#outbox li[data-cmid="${cmid}"]`, "data-state"), "pending");
    assert.deepEqual(await texts(alice.page), ["alice: hello bob"], "nothing reached alice yet");

    proxy.unblock();
    await alice.page.waitForFunction(() => document.getElementById("messages")?.textContent?.includes("bob: sent while offline"), undefined, { timeout: WAIT });
    await bob.page.waitForFunction(() => document.querySelectorAll("#outbox li").length === 0, undefined, { timeout: WAIT });
    await bob.page.waitForFunction(() => document.getElementById("messages")?.textContent?.includes("bob: sent while offline"), undefined, { timeout: WAIT });
    await shot(alice.page, "react-offline-alice");

    const stored = (await api(node.url, await mintToken("alice")).get<{ messages: MessageData[] }>(`/conversations/${conv.id}/messages`)).body.messages;
    assert.deepEqual(stored.map((m) => [m.senderId, m.message]), [["alice", "hello bob"], ["bob", "sent while offline"]], "stored once");
    assert.equal(stored[1]?.clientMessageId, cmid, "with the clientMessageId it had before the reload");
    assert.deepEqual(await texts(alice.page), ["alice: hello bob", "bob: sent while offline"], "alice shows it once");
    assert.deepEqual(await texts(bob.page), ["alice: hello bob", "bob: sent while offline"], "bob too");
  });
});
