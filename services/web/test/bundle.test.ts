/**
 * The page's bundle carries the SDK and socket.io-client, not the server's payload validators:
 * `@chat/protocol`'s index brings TypeBox (about 46 KiB minified), and the SDK only needs its
 * types and `newClientMessageId` (imported from the `@chat/protocol/ids` subpath).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { build } from "esbuild";

const here = import.meta.dirname;

describe("the page's bundle", () => {
  it("holds no TypeBox: the SDK imports only types and the id maker from @chat/protocol", async () => {
    const result = await build({
      entryPoints: [path.join(here, "../src/main.ts")],
      bundle: true,
      format: "esm",
      platform: "browser",
      minify: true,
      write: false,
      metafile: true,
      outfile: path.join(here, "bundle-check.js"),
      logLevel: "silent",
    });
    const inputs = Object.keys(result.metafile.inputs);
    assert.ok(inputs.some((i) => i.includes("socket.io-client")), "the bundle was built from the page's sources");
    assert.ok(inputs.some((i) => i.includes("packages/protocol/src/ids.ts")), "newClientMessageId is bundled");
    assert.deepEqual(inputs.filter((i) => i.includes("@sinclair/typebox")), [], "no TypeBox module in the page");
  });
});
