/**
 * Builds the installable package into dist/: ESM and CommonJS bundles by esbuild (the protocol's
 * few runtime lines inlined, `socket.io-client` left a dependency) and declarations by tsc, with
 * the protocol's declarations copied in beside them so the package stands alone. The workspace
 * itself imports src/ (package.json `exports`); pnpm pack publishes dist/ (`publishConfig`).
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { build } from "esbuild";

const here = import.meta.dirname;
const dist = path.join(here, "dist");
const protocolSrc = path.join(here, "../protocol/src");
fs.rmSync(dist, { recursive: true, force: true });

const entries = { index: path.join(here, "src/index.ts"), node: path.join(here, "src/node.ts") };
for (const format of ["esm", "cjs"] as const) {
  await build({
    entryPoints: entries,
    outdir: dist,
    outExtension: { ".js": format === "esm" ? ".js" : ".cjs" },
    bundle: true,
    format,
    platform: "neutral",
    target: "es2022",
    // Runtime dependencies stay imports; @chat/protocol is inlined (only ids and limits are used).
    external: ["socket.io-client", "node:*"],
    sourcemap: true,
    logLevel: "warning",
  });
}

// Declarations of the client and of the protocol it names in its types.
const tsc = path.join(here, "../../node_modules/typescript/bin/tsc");
const types = path.join(dist, "types");
const r = spawnSync(
  process.execPath,
  [tsc, "-p", path.join(here, "tsconfig.build.json"), "--outDir", types],
  { encoding: "utf8" },
);
if (r.status !== 0) throw new Error(`tsc failed:\n${r.stdout}\n${r.stderr}`);

// Bare `@chat/protocol` specifiers in the declarations point at the copy shipped in dist/types.
const protocolTypes = path.join(types, "protocol/src");
function rewrite(dir: string): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) rewrite(full);
    else if (entry.name.endsWith(".d.ts")) {
      const text = fs.readFileSync(full, "utf8");
      const rel = (sub: string) => {
        const p = path.relative(path.dirname(full), path.join(protocolTypes, `${sub}.js`)).split(path.sep).join("/");
        return p.startsWith(".") ? p : `./${p}`;
      };
      const out = text
        .replace(/(["'])(\.\.?\/[^"']+)\.ts\1/g, (_m, q: string, spec: string) => `${q}${spec}.js${q}`)
        .replace(/(["'])@chat\/protocol(?:\/(\w+))?\1/g, (_m, q: string, sub?: string) => `${q}${rel(sub ?? "index")}${q}`);
      if (out !== text) fs.writeFileSync(full, out);
    }
  }
}
rewrite(types);
if (!fs.existsSync(path.join(protocolTypes, "index.d.ts"))) throw new Error(`protocol declarations missing under ${protocolSrc}`);
for (const [name] of Object.entries(entries)) {
  const target = `./types/client/src/${name}.js`;
  fs.writeFileSync(path.join(dist, `${name}.d.ts`), `export * from "${target}";\n`);
  fs.writeFileSync(path.join(dist, `${name}.d.cts`), `export * from "${target}";\n`);
}
console.log(`built ${path.relative(process.cwd(), dist)}`);
