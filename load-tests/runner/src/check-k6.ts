/**
 * Keeps the k6 scripts honest without k6 (a Go binary not installable here): every `.js` under
 * load-tests/k6 is parsed by V8 as an ES module (vm.SourceTextModule), and every scenario is
 * linked against its real relative imports and against stand-ins for k6's modules that export
 * exactly the names k6 documents, so a misspelt import or export fails here, not in k6.
 * Nothing is evaluated. Needs `--experimental-vm-modules`:
 *   node --experimental-vm-modules load-tests/runner/src/check-k6.ts
 */
import fs from "node:fs";
import path from "node:path";
import vm from "node:vm";

const K6_DIR = path.resolve(import.meta.dirname, "../../k6");

/** Named exports of k6's built-in modules that the scripts may import (plus `default`). */
export const K6_MODULES: Record<string, string[]> = {
  k6: ["check", "fail", "group", "sleep", "randomSeed", "default"],
  "k6/http": ["default", "get", "post", "put", "del", "request", "batch", "expectedStatuses", "setResponseCallback"],
  "k6/metrics": ["Counter", "Gauge", "Rate", "Trend", "default"],
  "k6/websockets": ["WebSocket", "Blob", "default"],
  "k6/experimental/websockets": ["WebSocket", "Blob", "default"],
  "k6/timers": ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "default"],
  "k6/crypto": ["default", "hmac", "sha256", "randomBytes", "createHMAC", "createHash"],
  "k6/encoding": ["default", "b64encode", "b64decode"],
  "k6/execution": ["default"],
  "k6/data": ["SharedArray", "default"],
};

type Mod = vm.Module;

function listJs(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listJs(full));
    else if (e.name.endsWith(".js")) out.push(full);
  }
  return out.sort();
}

export interface CheckResult {
  file: string;
  ok: boolean;
  error?: string;
}

/** Parses and links every script; returns one result per file. */
export async function checkK6Scripts(dir = K6_DIR): Promise<CheckResult[]> {
  const { SourceTextModule, SyntheticModule } = vm as unknown as {
    SourceTextModule: new (src: string, o: { identifier: string }) => Mod;
    SyntheticModule: new (names: string[], ev: () => void, o: { identifier: string }) => Mod;
  };
  if (typeof SourceTextModule !== "function") throw new Error("run node with --experimental-vm-modules");
  const cache = new Map<string, Mod>();
  const load = (file: string): Mod => {
    let m = cache.get(file);
    if (!m) {
      m = new SourceTextModule(fs.readFileSync(file, "utf8"), { identifier: file });
      cache.set(file, m);
    }
    return m;
  };
  const linker = (specifier: string, referencing: Mod): Mod => {
    const names = K6_MODULES[specifier];
    if (names) {
      const key = `k6:${specifier}`;
      let m = cache.get(key);
      if (!m) {
        m = new SyntheticModule(names, () => {}, { identifier: key });
        cache.set(key, m);
      }
      return m;
    }
    if (!specifier.startsWith(".")) throw new Error(`${referencing.identifier}: import of "${specifier}" is neither relative nor a known k6 module`);
    const file = path.resolve(path.dirname(referencing.identifier), specifier);
    if (!fs.existsSync(file)) throw new Error(`${referencing.identifier}: "${specifier}" does not exist`);
    return load(file);
  };
  const results: CheckResult[] = [];
  for (const file of listJs(dir)) {
    const rel = path.relative(dir, file);
    try {
      const m = load(file);
      if (m.status === "unlinked") await m.link(linker);
      if (rel.startsWith(`scenarios${path.sep}`)) {
        // Names only: the bindings stay uninitialised because nothing is evaluated.
        const exported = Object.getOwnPropertyNames(m.namespace);
        const lacking = ["default", "options", "handleSummary"].filter((n) => !exported.includes(n));
        if (lacking.length) throw new Error(`a scenario must export ${lacking.join(", ")}`);
      }
      results.push({ file: rel, ok: true });
    } catch (e) {
      results.push({ file: rel, ok: false, error: e instanceof Error ? e.message : String(e) });
    }
  }
  return results;
}

if (import.meta.main) {
  const results = await checkK6Scripts(process.argv[2] ? path.resolve(process.argv[2]) : K6_DIR);
  for (const r of results) console.log(`${r.ok ? "ok  " : "FAIL"} ${r.file}${r.error ? `: ${r.error}` : ""}`);
  process.exit(results.every((r) => r.ok) ? 0 : 1);
}
