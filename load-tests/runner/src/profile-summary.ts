/**
 * Summarizes a V8 `.cpuprofile` (from `node --cpu-prof`) into Markdown: self time by function and
 * by package, so the benchmark report can say where a node's CPU goes at saturation.
 * CLI: `node load-tests/runner/src/profile-summary.ts file.cpuprofile [top]`.
 */
import fs from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

/** Where a frame's code lives: an npm package, a Node built-in, the project, or V8's own buckets. */
function packageOf(url: string, fn: string): string {
  if (!url) return fn.startsWith("(") ? fn : "(native)";
  if (url.startsWith("node:")) return "node:" + (url.slice(5).split("/")[1] ?? url.slice(5));
  const nm = url.lastIndexOf("/node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + 14).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : (rest[0] ?? "?");
  }
  const m = /\/(services|packages)\/([^/]+)\//.exec(url);
  return m ? `${m[1]}/${m[2]}` : url.replace(/^file:\/\//, "");
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf("/node_modules/");
  if (nm >= 0) return url.slice(nm + 14);
  const m = /\/((services|packages|load-tests)\/.*)$/.exec(url);
  return m?.[1] ?? url.replace(/^file:\/\//, "");
}

export function summarizeProfile(p: CpuProfile, top = 20): string {
  const selfUs = new Map<number, number>();
  if (p.samples && p.timeDeltas) {
    for (let i = 0; i < p.samples.length; i++) {
      const id = p.samples[i] ?? -1;
      selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, p.timeDeltas[i] ?? 0));
    }
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0) || 1;
  const byFn = new Map<string, { us: number; fn: string; where: string }>();
  const byPkg = new Map<string, number>();
  for (const n of p.nodes) {
    const us = selfUs.get(n.id) ?? 0;
    if (us === 0) continue;
    const fn = n.callFrame.functionName || "(anonymous)";
    const where = n.callFrame.url ? `${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}` : "";
    const key = `${fn}@${where}`;
    const e = byFn.get(key) ?? { us: 0, fn, where };
    e.us += us;
    byFn.set(key, e);
    const pkg = packageOf(n.callFrame.url, fn);
    byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + us);
  }
  const idle = (byPkg.get("(idle)") ?? 0) / total;
  const pct = (us: number) => ((100 * us) / total).toFixed(1);
  const lines: string[] = [];
  lines.push(`Sampled ${((p.endTime - p.startTime) / 1e6).toFixed(1)} s, idle ${(100 * idle).toFixed(1)} %. Self time, share of all samples.`, "");
  lines.push("| self % | package / bucket |", "| ---: | --- |");
  for (const [pkg, us] of [...byPkg].sort((a, b) => b[1] - a[1]).slice(0, 15)) lines.push(`| ${pct(us)} | ${pkg} |`);
  lines.push("", "| self % | function | where |", "| ---: | --- | --- |");
  for (const e of [...byFn.values()].sort((a, b) => b.us - a.us).slice(0, top)) lines.push(`| ${pct(e.us)} | \`${e.fn}\` | ${e.where} |`);
  return lines.join("\n") + "\n";
}

if (import.meta.main) {
  const file = process.argv[2];
  if (!file) {
    console.error("usage: node profile-summary.ts <file.cpuprofile> [top]");
    process.exit(2);
  }
  console.log(summarizeProfile(JSON.parse(fs.readFileSync(file, "utf8")) as CpuProfile, Number(process.argv[3] ?? 20)));
}
