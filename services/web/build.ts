/**
 * Builds the page: bundles src/main.ts (with @chat/client and socket.io-client) into dist/app.js
 * and copies the static files of public/ next to it. `node build.ts --watch` rebuilds on change.
 */
import { build, context, type BuildOptions } from "esbuild";
import fs from "node:fs";
import path from "node:path";

const here = import.meta.dirname;
const dist = path.join(here, "dist");
const watch = process.argv.includes("--watch");

const options: BuildOptions = {
  entryPoints: [path.join(here, "src/main.ts")],
  outfile: path.join(dist, "app.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2022", "chrome110", "firefox115", "safari16"],
  minify: !watch,
  sourcemap: true,
  legalComments: "linked",
  logLevel: "info",
};

// Files are overwritten in place, never removed first: a node or nginx serving dist/ while it is
// rebuilt (tests, `pnpm cluster`) never sees it missing.
fs.mkdirSync(dist, { recursive: true });
for (const file of fs.readdirSync(path.join(here, "public"))) {
  fs.copyFileSync(path.join(here, "public", file), path.join(dist, file));
}

if (watch) {
  const ctx = await context(options);
  await ctx.watch();
  console.log("watching services/web/src for changes");
} else {
  const result = await build({ ...options, metafile: true });
  const bytes = result.metafile.outputs[path.relative(process.cwd(), options.outfile as string)]?.bytes;
  if (bytes !== undefined) console.log(`dist/app.js: ${(bytes / 1024).toFixed(1)} KiB`);
}
