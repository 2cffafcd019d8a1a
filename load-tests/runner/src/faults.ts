/**
 * `pnpm bench:faults [-- --quick] [--scenarios kill,sigterm,rolling,redis,scale] [...]`: the local
 * cluster (3 nodes, Redis, nginx: infra/cluster) under a steady send load from SDK-like clients,
 * with seed-like clients listening, through each fault in turn (faults-scenarios.ts). Prints a
 * table per scenario and the figures, writes bench/results/<stamp>-faults.{json,md}, and
 * with --docs puts the table into docs/reliability.md. docs/reliability.md explains the columns.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { REPO_ROOT, stopAll } from "@chat/process-kit";
import { startCluster } from "../../../infra/cluster/cluster.ts";
import { positive, readArgs, UsageError, type CommandSpec } from "./args.ts";
import { runScenario, type FaultParams, type ScenarioResult } from "./faults-run.ts";
import { figures, renderMarkdown, renderScenario, type FaultsRun } from "./faults-report.ts";
import { DEFAULT_TIMING, scenarios } from "./faults-scenarios.ts";

const SECRET = "faults-secret-0123456789abcdef0123";
const ALL = scenarios().map((s) => s.id);

const USAGE = `usage: pnpm bench:faults [-- option...]
  --quick                  6 conversations of 3 SDK-like + 2 seed-like clients, 60 sends/s, short phases
                           (default: 20 conversations of 6 + 4, i.e. 200 clients, 400 sends/s)
  --scenarios a,b,...      which, in this order (default: ${ALL.join(",")})
  --conversations n        conversations (each with its own members)
  --sdk n --seed n         SDK-like and seed-like members per conversation
  --rate n                 sends per second over the whole cluster, from the SDK-like members
  --before s --after s     seconds of load before the fault and after it is over (default 5 and 5; --quick 2 and 3)
  --out dir                where results go (default bench/results)
  --docs                   also write the table into docs/reliability.md
`;
const SPEC: CommandSpec = {
  name: "pnpm bench:faults",
  usage: USAGE,
  options: { quick: "flag", scenarios: "value", conversations: "value", sdk: "value", seed: "value", rate: "value", before: "value", after: "value", out: "value", docs: "flag" },
};

const args = await readArgs(process.argv.slice(2), SPEC, (a) => {
  const quick = a.has("quick");
  const chosen = (a.get("scenarios") ?? ALL.join(",")).split(",").map((s) => s.trim());
  for (const s of chosen) if (!ALL.includes(s)) throw new UsageError(`unknown scenario ${JSON.stringify(s)}; the scenarios are ${ALL.join(", ")}`);
  const int = (name: string, dflt: number) => {
    const v = positive(a, name, dflt);
    if (!Number.isInteger(v)) throw new UsageError(`--${name} must be a whole number, got ${a.get(name)}`);
    return v;
  };
  const params: FaultParams = {
    secret: SECRET,
    conversations: int("conversations", quick ? 6 : 20),
    sdkPerConversation: int("sdk", quick ? 3 : 6),
    seedPerConversation: int("seed", quick ? 2 : 4),
    rate: positive(a, "rate", quick ? 60 : 400),
    beforeMs: positive(a, "before", quick ? 2 : 5) * 1000,
    afterMs: positive(a, "after", quick ? 3 : 5) * 1000,
    settleMs: 20_000,
  };
  return { quick, chosen, params, out: path.resolve(REPO_ROOT, a.get("out") ?? "bench/results"), docs: a.has("docs") };
});

function commit(): string {
  try {
    let c = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: REPO_ROOT }).toString().trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "services", "packages", "infra", "load-tests"], { cwd: REPO_ROOT }).toString().trim();
    if (dirty) c += " + uncommitted changes";
    return c;
  } catch {
    return "unknown";
  }
}

const DOCS = path.join(REPO_ROOT, "docs/reliability.md");
const BEGIN = "<!-- bench:faults table: written by `pnpm bench:faults -- --docs` -->";
const END = "<!-- end of the bench:faults table -->";

/** Replaces the table between the markers of docs/reliability.md. */
function writeDocs(run: FaultsRun, resultFile: string): void {
  const text = fs.readFileSync(DOCS, "utf8");
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  if (a < 0 || b < a) throw new Error(`${DOCS} lacks the markers ${BEGIN} ... ${END}`);
  const p = run.params as unknown as FaultParams & { quick: boolean };
  const section = [
    BEGIN,
    "",
    `Latest run: ${run.startedAt.slice(0, 16).replace("T", " ")} UTC, commit \`${run.commit}\`, ${run.machine}; ` +
      `${p.conversations} conversations of ${p.sdkPerConversation} SDK-like + ${p.seedPerConversation} seed-like clients ` +
      `(${p.conversations * (p.sdkPerConversation + p.seedPerConversation)} clients), ${p.rate} sends/s${p.quick ? " (--quick)" : ""}; ` +
      `[results](../${path.relative(REPO_ROOT, resultFile)}).`,
    "",
    renderMarkdown(run),
    "",
    END,
  ].join("\n");
  fs.writeFileSync(DOCS, text.slice(0, a) + section + text.slice(b + END.length));
}

async function main(): Promise<void> {
  const log = (l: string) => console.log(`${new Date().toISOString().slice(11, 19)} ${l}`);
  const run: FaultsRun = {
    startedAt: new Date().toISOString(),
    commit: commit(),
    machine: `${os.availableParallelism()} cores (${os.cpus()[0]?.model.trim() ?? "unknown CPU"}), Node ${process.version}, load average ${os.loadavg()[0]?.toFixed(1)} at the start`,
    params: { ...args.params, secret: undefined, quick: args.quick, timing: DEFAULT_TIMING },
    scenarios: [],
  };
  log(`starting the local cluster: 3 nodes, Redis, nginx`);
  const cluster = await startCluster({
    nodes: 3,
    env: { JWT_SECRET: SECRET, RATE_LIMIT_DISABLED: "1", LOG_LEVEL: "warn" },
  });
  try {
    const byId = new Map(scenarios().map((s) => [s.id, s]));
    for (const id of args.chosen) {
      const s = byId.get(id)!;
      log(`scenario ${s.id}: ${s.title}`);
      const r: ScenarioResult = await runScenario(cluster, s, args.params, log);
      run.scenarios.push(r);
      console.log(`\n${renderScenario(r)}\n`);
    }
  } finally {
    await cluster.stop();
    await stopAll();
  }
  fs.mkdirSync(args.out, { recursive: true });
  const stamp = run.startedAt.slice(0, 16).replace(/:/g, "");
  const json = path.join(args.out, `${stamp}-faults.json`);
  fs.writeFileSync(json, JSON.stringify(run, null, 1) + "\n");
  const md = renderMarkdown(run);
  fs.writeFileSync(path.join(args.out, `${stamp}-faults.md`), `# bench:faults, ${run.startedAt}\n\nCommit ${run.commit}, ${run.machine}.\n\n${md}\n`);
  console.log(md);
  if (args.docs) writeDocs(run, json);
  const unmet = run.scenarios.flatMap((r) => figures(r).filter((f) => !f.met).map((f) => `${r.id}: ${f.name} ${f.value} (${f.target})`));
  log(`wrote ${path.relative(REPO_ROOT, json)}${args.docs ? " and docs/reliability.md" : ""}; figures not met: ${unmet.length ? unmet.join("; ") : "none"}`);
}

await main();
