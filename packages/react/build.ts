/** Builds dist/: the bundles by Vite (vite.config.ts), the declarations by tsc. */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const here = import.meta.dirname;
const bin = (p: string) => path.join(here, "../../node_modules", p);
const step = (args: string[]) => {
  const r = spawnSync(process.execPath, args, { cwd: here, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
};
step([path.join(here, "node_modules/vite/bin/vite.js"), "build", "--logLevel", "warn"]);
step([bin("typescript/bin/tsc"), "-p", "tsconfig.build.json", "--outDir", "dist/types"]);
for (const file of fs.readdirSync(path.join(here, "dist/types"))) {
  const full = path.join(here, "dist/types", file);
  fs.writeFileSync(full, fs.readFileSync(full, "utf8").replace(/(["'])(\.\.?\/[^"']+)\.ts\1/g, "$1$2.js$1"));
}
fs.writeFileSync(path.join(here, "dist/index.d.ts"), `export * from "./types/index.js";\n`);
console.log("built packages/react/dist");
