/**
 * The browser tests' common moves: Debian's Chromium through playwright-core, the page's build,
 * pinning a browser context to one node through nginx's own stickiness, screenshots.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { REPO_ROOT, eventually } from "@chat/test-kit";

export const SHOTS_DIR = path.join(REPO_ROOT, "test-results/browser");

/** Chromium from Debian (`apt-get install chromium`; scripts/ensure.sh system chromium). */
export function launchChromium(): Promise<Browser> {
  const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
  if (!fs.existsSync(executablePath)) {
    throw new Error(`${executablePath} is missing: run \`bash scripts/ensure.sh system chromium\` (or set CHROMIUM_PATH)`);
  }
  return chromium.launch({
    executablePath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** Builds services/web into services/web/dist, which nginx (and a lone node) serve at `/`. */
export function buildWeb(): void {
  const r = spawnSync(process.execPath, ["build.ts"], { cwd: path.join(REPO_ROOT, "services/web"), encoding: "utf8" });
  if (r.status !== 0) throw new Error(`services/web build failed:\n${r.stdout}\n${r.stderr}`);
}

/** Which node nginx sends a request carrying `chat_sticky=<value>` to (through /healthz, which names it). */
async function nodeForCookie(lbUrl: string, value: string): Promise<string> {
  const res = await fetch(`${lbUrl}/healthz`, { headers: { cookie: `chat_sticky=${value}` } });
  return ((await res.json()) as { nodeId: string }).nodeId;
}

/**
 * A `chat_sticky` cookie value per node id: nginx hashes the cookie (`hash $chat_sticky_key
 * consistent`), so a context holding the value is pinned to that node for every request, the
 * page, REST and Socket.IO alike, and moves to a survivor only when its node is down.
 */
export async function stickyValues(lbUrl: string, nodeIds: string[]): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (let i = 0; i < 256 && found.size < nodeIds.length; i++) {
    const value = `pin${i.toString(16).padStart(4, "0")}`;
    const nodeId = await nodeForCookie(lbUrl, value);
    if (nodeIds.includes(nodeId) && !found.has(nodeId)) found.set(nodeId, value);
  }
  if (found.size < nodeIds.length) throw new Error(`no sticky value found for every node (${[...found.keys()].join(", ")})`);
  return found;
}

/** A context whose requests nginx pins to the node holding `stickyValue`. */
export async function pinnedContext(browser: Browser, lbUrl: string, stickyValue: string): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 960, height: 600 } });
  await context.addCookies([{ name: "chat_sticky", value: stickyValue, url: lbUrl, httpOnly: true, sameSite: "Lax" }]);
  return context;
}

/** The node id a page's own requests reach (same cookie, same origin). */
export function nodeOfPage(page: Page): Promise<string> {
  return page.evaluate(async () => ((await (await fetch("/healthz")).json()) as { nodeId: string }).nodeId);
}

/** `chat_connected_sockets` of one node, read from its /metrics. */
export async function connectedSockets(nodeUrl: string): Promise<number> {
  const text = await (await fetch(`${nodeUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("chat_connected_sockets"));
  return line ? Number(line.split(/\s+/).at(-1)) : Number.NaN;
}

export async function shot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(SHOTS_DIR, { recursive: true });
  const file = path.join(SHOTS_DIR, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/** Signs in through the page's development sign-in. */
export async function signIn(page: Page, url: string, userId: string): Promise<void> {
  await page.goto(url);
  await page.getByTestId("login-user").fill(userId);
  await page.getByTestId("login-submit").click();
  await page.getByTestId("current-user").filter({ hasText: userId }).waitFor();
  await waitForStatus(page, "connected");
}

export function waitForStatus(page: Page, state: string, timeout = 20_000): Promise<unknown> {
  return page.locator(`[data-testid="connection-status"][data-state="${state}"]`).waitFor({ timeout });
}

/** The confirmed messages' texts, in page order. */
export function messageTexts(page: Page): Promise<string[]> {
  return page.locator('[data-testid="message"] [data-testid="message-text"]').allTextContents();
}

/** Waits until the page shows exactly `expected` (in order) and no send is still pending. */
export async function expectMessages(page: Page, expected: string[], what: string): Promise<void> {
  let last: string[] = [];
  await eventually(
    async () => {
      last = await messageTexts(page);
      const pending = await page.getByTestId("message-pending").count();
      return pending === 0 && JSON.stringify(last) === JSON.stringify(expected);
    },
    20_000,
    `${what}: expected ${JSON.stringify(expected)}`,
  ).catch((err: Error) => {
    throw new Error(`${err.message}, page shows ${JSON.stringify(last)}`);
  });
}

/** Every `data-message-id` on the page is unique. */
export async function distinctIds(page: Page): Promise<boolean> {
  const ids = await page.locator('[data-testid="message"]').evaluateAll((els) => els.map((e) => e.getAttribute("data-message-id")));
  return new Set(ids).size === ids.length;
}

/**
 * Records every value the status indicator's data-state takes, in the page, so a brief state
 * (reconnecting for a second) cannot slip between two polls of the test.
 */
export async function recordStatus(page: Page): Promise<() => Promise<string[]>> {
  await page.evaluate(() => {
    const target = document.querySelector('[data-testid="connection-status"]') as HTMLElement;
    const seen: string[] = [target.dataset.state ?? ""];
    (window as unknown as { __states: string[] }).__states = seen;
    new MutationObserver(() => {
      if (seen.at(-1) !== target.dataset.state) seen.push(target.dataset.state ?? "");
    }).observe(target, { attributes: true, attributeFilter: ["data-state"] });
  });
  return () => page.evaluate(() => (window as unknown as { __states: string[] }).__states);
}
