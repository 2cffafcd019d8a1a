/**
 * The SDK as a user installs it: `pnpm pack` (of @chat/client and @chat/react), the tarballs
 * installed into a fresh project outside the workspace, then imported from plain Node (ESM and CommonJS), type-checked by tsc, and bundled
 * by esbuild into a page that Debian's Chromium loads; both chat with a real node.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { build } from "esbuild";
import { chromium, type Browser } from "playwright-core";
import type { MessageData } from "@chat/protocol";
import { REPO_ROOT, api, eventually, freePort, mintToken, startNode, stopAll, tempDir, type NodeHandle } from "@chat/test-kit";

const here = import.meta.dirname;
// This Node (24) first on PATH: `pnpm pack` runs the packages' `node build.ts` (prepack).
const env = { ...process.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ""}` };
const run = (cmd: string, args: string[], cwd: string) =>
  execFileSync(cmd, args, { cwd, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 240_000 });

describe("@chat/client as a user installs it", () => {
  let node: NodeHandle;
  let project: string;
  let pagePort: number;

  before(async () => {
    pagePort = await freePort();
    node = await startNode({ RATE_LIMIT_DISABLED: "1", CORS_ORIGINS: `http://127.0.0.1:${pagePort}` });
    const packDir = tempDir("chat-pack-");
    run("pnpm", ["pack", "--pack-destination", packDir], path.join(REPO_ROOT, "packages/client"));
    run("pnpm", ["pack", "--pack-destination", packDir], path.join(REPO_ROOT, "packages/react"));
    const tarball = fs.readdirSync(packDir).find((f) => f.startsWith("chat-client-") && f.endsWith(".tgz"));
    const reactTarball = fs.readdirSync(packDir).find((f) => f.startsWith("chat-react-") && f.endsWith(".tgz"));
    assert.ok(reactTarball, "pnpm pack wrote @chat/react's tarball");
    assert.ok(tarball, "pnpm pack wrote a tarball");
    const listing = run("tar", ["-tzf", path.join(packDir, tarball)], packDir).split("\n");
    assert.ok(listing.includes("package/dist/index.js") && listing.includes("package/dist/index.d.ts"), "the tarball holds dist/");
    assert.ok(!listing.some((f) => f.startsWith("package/src/") || f.startsWith("package/test/")), "and no sources or tests");

    project = tempDir("chat-consumer-");
    fs.writeFileSync(
      path.join(project, "package.json"),
      JSON.stringify({
        name: "consumer",
        private: true,
        type: "module",
        dependencies: {
          "@chat/client": `file:${path.join(packDir, tarball)}`,
          "@chat/react": `file:${path.join(packDir, reactTarball)}`,
          react: "19.2.0",
          "@types/react": "19.2.2",
        },
      }),
    );
    // The store of this machine first; the registry only for what it lacks.
    run("pnpm", ["install", "--prefer-offline", "--ignore-workspace", "--config.confirmModulesPurge=false"], project);
    for (const f of ["consumer-node.mjs", "consumer-page.ts", "consumer-types.mts"]) fs.copyFileSync(path.join(here, "fixtures", f), path.join(project, f));
  });

  after(async () => {
    await stopAll();
  });

  it("installs outside the workspace with its own dependencies, not the workspace's sources", () => {
    const installed = fs.realpathSync(path.join(project, "node_modules/@chat/client"));
    assert.ok(!installed.startsWith(REPO_ROOT), `installed from the tarball, not linked into the workspace (${installed})`);
    const manifest = JSON.parse(fs.readFileSync(path.join(installed, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    assert.ok(!("@chat/protocol" in manifest.dependencies), "the protocol is bundled, not a dependency");
  });

  it("chats from plain Node, refuses an empty message before sending, and leaves no outbox behind", async () => {
    const token = await mintToken("alice");
    const outboxFile = path.join(project, "outbox.json");
    const out = run(process.execPath, ["consumer-node.mjs", node.url, token, outboxFile], project);
    const result = JSON.parse(out.trim().split("\n").at(-1)!) as { conversationId: string; stored: MessageData; refusedCode: string; cjsHasClient: boolean; outboxLeft: number };
    assert.equal(result.refusedCode, "INVALID_PAYLOAD");
    assert.equal(result.cjsHasClient, true, "the CommonJS entry loads too");
    assert.equal(result.outboxLeft, 0);
    assert.equal(result.stored.message, "hello from node");
    const bob = api(node.url, await mintToken("bob"));
    const page = await bob.get<{ messages: MessageData[] }>(`/conversations/${result.conversationId}/messages`);
    assert.deepEqual(page.body.messages.map((m) => m.message), ["hello from node"], "bob reads exactly the one message");
  });

  it("loads @chat/react's built entry next to it, React left to the app", () => {
    const script = `import * as r from "@chat/react"; console.log(JSON.stringify(Object.keys(r).sort()));`;
    const out = run(process.execPath, ["--input-type=module", "-e", script], project);
    assert.deepEqual(JSON.parse(out), ["ChatProvider", "useChatClient", "useConnection", "useConversation", "usePresence", "useTyping"]);
    const installed = fs.realpathSync(path.join(project, "node_modules/@chat/react"));
    assert.ok(fs.existsSync(path.join(installed, "dist/index.js")) && !fs.existsSync(path.join(installed, "src")), "dist only");
  });

  it("type-checks a consumer against the tarball's declarations", () => {
    fs.writeFileSync(
      path.join(project, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", target: "ES2022", strict: true, noEmit: true, lib: ["ES2024", "DOM"], types: [] }, files: ["consumer-types.mts"] }),
    );
    const tsc = path.join(REPO_ROOT, "node_modules/typescript/bin/tsc");
    run(process.execPath, [tsc, "-p", "tsconfig.json"], project);
    // The check can fail: a wrong use of the API is refused.
    fs.writeFileSync(path.join(project, "consumer-types.mts"), `import { createChatClient } from "@chat/client";\ncreateChatClient({ url: 1 });\n`);
    assert.throws(
      () => run(process.execPath, [tsc, "-p", "tsconfig.json"], project),
      (err: { stdout?: string }) => /error TS2/.test(err.stdout ?? ""),
    );
  });

  describe("bundled into a page", () => {
    let browser: Browser;
    let server: http.Server;

    before(async () => {
      await build({
        absWorkingDir: project,
        entryPoints: [path.join(project, "consumer-page.ts")],
        outfile: path.join(project, "www/app.js"),
        bundle: true,
        format: "esm",
        platform: "browser",
        target: "es2022",
        logLevel: "warning",
      });
      fs.writeFileSync(path.join(project, "www/index.html"), `<!doctype html><meta charset="utf-8"><title>consumer</title><script type="module" src="/app.js"></script>`);
      server = http.createServer((req, res) => {
        const file = req.url?.startsWith("/app.js") ? "app.js" : "index.html";
        res.writeHead(200, { "content-type": file.endsWith(".js") ? "text/javascript" : "text/html" });
        res.end(fs.readFileSync(path.join(project, "www", file)));
      });
      await new Promise<void>((resolve) => server.listen(pagePort, "127.0.0.1", resolve));
      browser = await chromium.launch({
        executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
        args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      });
    });

    after(async () => {
      await browser?.close();
      await new Promise((resolve) => server?.close(resolve));
    });

    it("keeps the bundle free of Node modules and chats from Chromium", async () => {
      const bundle = fs.readFileSync(path.join(project, "www/app.js"), "utf8");
      assert.ok(!/node:fs|FormatRegistry/.test(bundle), "no node:fs and no TypeBox in the page");
      const alice = api(node.url, await mintToken("alice"));
      const conv = (await alice.post<{ id: string }>("/conversations", { members: ["bob"] })).body;
      const page = await browser.newPage();
      const hash = new URLSearchParams({ url: node.url, token: await mintToken("bob"), conversation: conv.id });
      await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/#${hash.toString()}`);
      const result = await eventually(
        () => page.evaluate(() => (globalThis as unknown as { chatResult?: { sent?: MessageData; error?: string; seen: MessageData[] } }).chatResult).then((r) => (r?.sent || r?.error ? r : undefined)),
        30_000,
        "the page to send",
      );
      assert.ok(result);
      assert.equal(result.error, undefined);
      assert.equal(result.sent?.message, "hello from the page");
      const stored = await alice.get<{ messages: MessageData[] }>(`/conversations/${conv.id}/messages`);
      assert.deepEqual(stored.body.messages.map((m) => [m.senderId, m.message]), [["bob", "hello from the page"]]);
    });
  });
});
