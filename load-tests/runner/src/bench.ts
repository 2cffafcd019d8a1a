/**
 * `pnpm bench [-- --quick] [--systems chat,cluster,seed,raw|none] [--profile [chat,seed]] [--profile-rate n]`
 *   other knobs: --users --rooms --step-seconds --rates 250,500,... --max-steps n --idle n --workers n --half-rounds n --ladders n --out dir
 *   --chat-env KEY=V,...  extra environment for the project's nodes (e.g. SQLITE_SYNCHRONOUS=NORMAL)
 *   --peer-env KEY=V,...  extra environment for the seed reference and the raw floor
 *   --help (-h) prints the usage (USAGE below) and exits 0 without starting anything; an unknown
 *   option is an error (exit 2, usage on stderr)
 *
 * One run, one load shape, four systems side by side:
 *   chat     the project as one node (embedded SQLite store, every message durably stored first)
 *   cluster  the project as 2 nodes behind nginx, rooms shared through Redis
 *   seed     the seed document's own example server (peers/seed-reference.ts): stores nothing
 *   raw      a bare `ws` broadcast server with rooms (peers/raw-ws.ts): the floor
 * For each, the offered rate is stepped up on the same connections until it saturates; the
 * saturation point is the highest step with delivery ratio 1.0 and p99 < 100 ms (see stepUp).
 * Then p99 at half the seed's saturation rate (all systems up, rounds interleaved), memory per idle
 * connection on fresh servers, and optionally a CPU profile (--profile). Results go to
 * bench/results/<stamp>.{json,md,svg} (and <stamp>-profile*.md); `--systems none --profile chat,seed`
 * only profiles. docs/benchmark.md explains how to read them.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { pathToFileURL } from "node:url";
import { REPO_ROOT, stopAll } from "@chat/process-kit";
import { num, readArgs, UsageError, type CommandSpec } from "./args.ts";
import { BENCH_SECRET, clusterAvailable, launch, type Running, type SystemKind } from "./launch.ts";
import { buildPlan, type Target } from "./plan.ts";
import { cpuSecondsOfAll, rssOfAll } from "./proc-mem.ts";
import { LoadSession, type ConnectResult, type StepResult } from "./session.ts";
import { LABEL, renderMarkdown, renderSvg, type BenchResult, type HalfRateResult, type IdleResult, type SystemResult } from "./report.ts";
import { summarizeProfile } from "./profile-summary.ts";

const SYSTEMS: readonly SystemKind[] = ["seed", "raw", "chat", "cluster"];
const targetOf = (k: SystemKind): Target => (k === "chat" || k === "cluster" ? "chat" : k);

const USAGE = `usage: pnpm bench [-- option...]
  --quick                      400 users, 3 s steps, 1 latency round (default: 1000 users, 5 s steps, 3 rounds)
  --systems chat,cluster,seed,raw|none
                               which systems to measure (default: all four); none: only --profile
  --profile [chat,seed]        also a CPU profile (--cpu-prof) of the chat node and/or the seed (default: chat)
  --profile-rate n             the profiled rate in msg/s (default: the chat node's saturation, else 3000)
  --users n --rooms n          connections and conversations per system (default 1000 and 100; --quick: 400, 40)
  --rates 250,500,...          the ladder of offered rates in msg/s
  --step-seconds n             seconds per ladder step (default 5; --quick: 3)
  --max-steps n                cap on ladder steps per system (default 20)
  --ladders n                  ladders per system, alternating order; the median is reported (default 1)
  --half-rounds n              rounds at half the seed's saturation rate (default 3; --quick: 1; 0: skip)
  --idle n                     idle connections for memory per connection (default 5000; --quick: 1000; 0: skip)
  --workers n                  load-generator worker processes (default 1)
  --chat-env KEY=V,...         extra environment for the project's nodes (e.g. SQLITE_SYNCHRONOUS=NORMAL)
  --peer-env KEY=V,...         extra environment for the seed reference and the raw floor
  --out dir                    where results go (default bench/results)
  --fixed [20,10,1]            instead of ladders: CPU µs per delivery and p99 of every system at one fixed
                               load below saturation (--fixed-rate, default 1500 msg/s; 1000 users) in rooms
                               of each size given, --fixed-rounds (default 3) rounds in alternating order,
                               the median reported; rooms of 1 give the CPU per stored message (about 4 minutes)
  --fixed-rate n --fixed-rounds n
  --fixed-ab KEY=V,...         with --fixed: one more node of the project beside the first, with this extra
                               environment (e.g. SQLITE_THREAD=main), in the same rounds: an A/B in one run
  --scale [1,2,4]              instead of ladders: the local cluster (nginx + Redis + n nodes) for each node count
                               and each of --scale-adapters (default classic,sharded), rooms of 20, --scale-rate
                               (default 1000 msg/s), --fixed-rounds rounds: CPU µs per delivery of nodes, Redis
                               and nginx summed from /proc, nginx's share apart
  --scale-rate n --scale-adapters classic,sharded
`;
const BENCH: CommandSpec = {
  name: "pnpm bench",
  usage: USAGE,
  options: {
    quick: "flag",
    systems: "value",
    profile: "optional",
    "profile-rate": "value",
    users: "value",
    rooms: "value",
    rates: "value",
    "step-seconds": "value",
    "max-steps": "value",
    ladders: "value",
    "half-rounds": "value",
    idle: "value",
    workers: "value",
    "chat-env": "value",
    "peer-env": "value",
    out: "value",
    fixed: "optional",
    "fixed-rate": "value",
    "fixed-ab": "value",
    "fixed-rounds": "value",
    scale: "optional",
    "scale-rate": "value",
    "scale-adapters": "value",
  },
};

/**
 * The options; or the usage and an exit before anything starts (args.ts): on stdout with status 0
 * for --help (-h), on stderr with status 2 for an unknown option, a stray argument (`--quick stray`),
 * a missing value or a bad --profile.
 */
const args = await readArgs(process.argv.slice(2), BENCH, (parsed) => {
  const profile = parsed.get("profile");
  if (profile !== undefined && profile !== "true" && !profile.split(",").every((k) => k === "chat" || k === "seed")) {
    throw new UsageError(`--profile takes chat and/or seed, got ${profile}`);
  }
  return parsed;
});
const quick = args.has("quick");
const cfg = {
  users: num(args, "users", quick ? 400 : 1000),
  rooms: num(args, "rooms", quick ? 40 : 100),
  stepSeconds: num(args, "step-seconds", quick ? 3 : 5),
  idle: num(args, "idle", quick ? 1000 : 5000),
  workers: num(args, "workers", 1),
  /** Cap on ladder steps per system (the ladder itself is the usual bound). */
  maxSteps: num(args, "max-steps", 20),
  halfRounds: num(args, "half-rounds", quick ? 1 : 3),
  /** Ladders per system, in alternating order; the median saturation is reported (the machine is shared and drifts). */
  ladders: num(args, "ladders", 1),
  p99LimitMs: 100,
};
const ladder = (args.get("rates") ?? (quick ? "500,1000,2000,3000,4000,5000,6000,7000,8000,10000" : "250,500,1000,1500,2000,2500,3000,3500,4000,5000,6000,7000,8000,10000"))
  .split(",")
  .map(Number);
/** `--chat-env SQLITE_SYNCHRONOUS=NORMAL,STORE_BATCH_MAX=256`: extra environment for the project's nodes. */
const envArg = (name: string): Record<string, string> =>
  Object.fromEntries(
    (args.get(name) ?? "").split(",").filter(Boolean).map((kv) => {
      const at = kv.indexOf("=");
      if (at < 1) throw new Error(`--${name} takes KEY=VALUE pairs, got ${kv}`);
      return [kv.slice(0, at), kv.slice(at + 1)];
    }),
  );
const chatEnv = envArg("chat-env");
/** `--fixed-ab SQLITE_THREAD=main`: the B side of a same-run A/B of the project's node. */
const abEnv = envArg("fixed-ab");
const envNote = (e: Record<string, string>) => Object.entries(e).map(([k, v]) => `${k}=${v}`).join(" ");
/** `--peer-env NODE_OPTIONS=...`: extra environment for the seed reference and the raw floor (fairness checks). */
const peerEnv = envArg("peer-env");
const envOf = (kind: SystemKind) => (targetOf(kind) === "chat" ? chatEnv : peerEnv);
const systems = (args.get("systems") ?? SYSTEMS.join(",")).split(",").filter((x) => x && x !== "none") as SystemKind[];
for (const s of systems) if (!SYSTEMS.includes(s)) throw new Error(`unknown system ${s}`);

const passes = (s: StepResult) => s.deliveryRatio === 1 && s.errors === 0 && s.latencyMs.p99 < cfg.p99LimitMs;
const log = (m: string) => process.stderr.write(`${m}\n`);

async function withSystem<T>(kind: SystemKind, fn: (r: Running) => Promise<T>, execArgv?: string[]): Promise<T> {
  const r = await launch(kind, { execArgv, env: envOf(kind) });
  try {
    return await fn(r);
  } finally {
    await r.stop();
  }
}

async function openSession(kind: SystemKind, r: Running, users: number, rooms: number): Promise<{ session: LoadSession; connect: ConnectResult }> {
  const plan = await buildPlan({ target: targetOf(kind), url: r.url, users, rooms, secret: BENCH_SECRET });
  const session = new LoadSession(plan, { workers: cfg.workers, serverPids: r.pids, progress: true, connectConcurrency: 100 });
  const connect = await session.connect();
  return { session, connect };
}

/**
 * Steps the offered rate up the ladder on one set of connections. A failing step is repeated once
 * after a pause (the machines here are shared: one hiccup of a neighbour should not set the knee);
 * the second failure in a row is the knee, and one more step beyond it is measured for the chart.
 */
async function stepUp(kind: SystemKind, extraRates: number[], mustRun: number[] = [], steppedRates: readonly number[] = ladder): Promise<SystemResult> {
  return withSystem(kind, async (r) => {
    const { session, connect } = await openSession(kind, r, cfg.users, cfg.rooms);
    const steps: StepResult[] = [];
    const retried: number[] = [];
    try {
      const rates = [...new Set([...steppedRates, ...extraRates.filter((x) => x > 0)])].sort((a, b) => a - b);
      let kneeAt: number | undefined;
      for (const rate of rates.slice(0, cfg.maxSteps + extraRates.length)) {
        log(`${kind}: offering ${rate} msg/s (${rate * (cfg.users / cfg.rooms)} deliveries/s)`);
        let s = await session.step(rate, cfg.stepSeconds);
        if (!passes(s) && kneeAt === undefined) {
          log(`${kind}: ${rate} msg/s failed (ratio ${s.deliveryRatio}, p99 ${s.latencyMs.p99} ms); repeating it once`);
          retried.push(rate);
          await pause(3000);
          s = await session.step(rate, cfg.stepSeconds);
        }
        steps.push(s);
        if (!passes(s)) {
          if (kneeAt !== undefined || s.latencyMs.p99 > 5000) break;
          kneeAt = rate;
          await pause(3000); // let the backlog clear before the step beyond the knee
        } else await pause(500);
      }
      // The contract's cluster target is judged at the seed's saturation rate, even past the knee.
      for (const rate of mustRun) {
        if (steps.some((x) => x.offeredRate === rate)) continue;
        await pause(3000);
        log(`${kind}: offering ${rate} msg/s (the seed's saturation rate)`);
        steps.push(await session.step(rate, cfg.stepSeconds));
      }
    } finally {
      await session.close();
    }
    return summarize(kind, connect, steps, retried);
  });
}

const pause = (ms: number) => new Promise((res) => setTimeout(res, ms));

/** One ladder as is; several: the median one by saturation (the lower middle of an even count), with every ladder's saturation listed. */
function medianLadder(runs: SystemResult[]): SystemResult {
  const first = runs[0]!;
  if (runs.length === 1) return first;
  const sat = (r: SystemResult) => r.saturation?.deliveriesPerSec ?? 0;
  const median = [...runs].sort((a, b) => sat(a) - sat(b))[Math.floor((runs.length - 1) / 2)]!;
  return { ...median, ladders: runs.map(sat) };
}

/** Saturation: the highest passing step below the first step that failed twice. */
function summarize(kind: SystemKind, connect: ConnectResult, steps: StepResult[], retried: number[]): SystemResult {
  let sat: StepResult | undefined;
  for (const s of steps) {
    if (!passes(s)) break;
    sat = s;
  }
  return {
    system: kind,
    connect,
    steps,
    retried,
    saturation: sat
      ? { offeredRate: sat.offeredRate, deliveriesPerSec: sat.deliveriesPerSec, p99: sat.latencyMs.p99, lowerBound: steps.every(passes) }
      : undefined,
  };
}

/**
 * p99 at one rate (half the seed's saturation) for every system, with all of them up and
 * connected at once and the rounds interleaved, so that a noisy neighbour hits every system alike;
 * the median of the rounds is reported.
 */
async function latencyAt(kinds: SystemKind[], rate: number, rounds: number): Promise<HalfRateResult[]> {
  const running: { kind: SystemKind; r: Running; session: LoadSession; p99s: number[]; ratios: number[] }[] = [];
  try {
    for (const kind of kinds) {
      const r = await launch(kind, { env: envOf(kind) });
      running.push({ kind, r, session: undefined as unknown as LoadSession, p99s: [], ratios: [] });
      const { session } = await openSession(kind, r, cfg.users, cfg.rooms);
      const last = running[running.length - 1];
      if (last) last.session = session;
    }
    for (let round = 0; round < rounds; round++) {
      for (const x of running) {
        log(`latency at ${rate} msg/s, round ${round + 1}/${rounds}: ${x.kind}`);
        const s = await x.session.step(rate, cfg.stepSeconds);
        x.p99s.push(s.latencyMs.p99);
        x.ratios.push(s.deliveryRatio);
        await pause(500);
      }
    }
  } finally {
    for (const x of running) {
      await x.session?.close().catch(() => {});
      await x.r.stop();
    }
  }
  const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)] ?? 0;
  return running.map((x) => ({ system: x.kind, offeredRate: rate, p99s: x.p99s, p99Median: median(x.p99s), minDeliveryRatio: Math.min(...x.ratios) }));
}

async function idleMemory(kind: SystemKind): Promise<IdleResult> {
  return withSystem(kind, async (r) => {
    await new Promise((res) => setTimeout(res, 1000));
    const before = rssOfAll(r.pids) ?? 0;
    const { session, connect } = await openSession(kind, r, cfg.idle, 0);
    await new Promise((res) => setTimeout(res, 2000));
    const after = rssOfAll(r.pids) ?? 0;
    await session.close();
    return {
      system: kind,
      connections: connect.connections,
      connectErrors: connect.connectErrors,
      rssBefore: before,
      rssAfter: after,
      bytesPerConnection: connect.connections ? Math.round((after - before) / connect.connections) : 0,
    };
  });
}

/** Runs one server (chat or seed) with --cpu-prof at `rate` and summarizes where its CPU went. */
async function profileSystem(kind: "chat" | "seed", rate: number): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${kind}-prof-`));
  await withSystem(
    kind,
    async (r) => {
      const { session } = await openSession(kind, r, cfg.users, cfg.rooms);
      try {
        await session.step(rate, Math.max(10, cfg.stepSeconds * 2));
      } finally {
        await session.close();
      }
    },
    [...(kind === "chat" ? [] : ["--import", pathToFileURL(path.join(import.meta.dirname, "peers/exit-on-sigterm.ts")).href]), "--cpu-prof", `--cpu-prof-dir=${dir}`],
  );
  // One file per thread (CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile): the main thread is 0.
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"));
  if (files.length === 0) throw new Error(`no .cpuprofile written in ${dir}`);
  const tid = (f: string) => Number(f.split(".")[4] ?? 0);
  files.sort((a, b) => tid(a) - tid(b));
  const parts: string[] = [];
  for (const f of files) {
    const keep = path.join(os.tmpdir(), `${kind}-latest-thread${tid(f)}.cpuprofile`);
    fs.copyFileSync(path.join(dir, f), keep);
    log(`profile: ${keep} (open in Chrome DevTools or speedscope for a flame graph)`);
    const summary = summarizeProfile(JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")), 25);
    parts.push(`## ${tid(f) === 0 ? "Main thread" : `Worker thread ${tid(f)}`}\n\n${summary}`);
  }
  const summary = parts.join("\n");
  const m = machine();
  return `# CPU profile of the ${kind === "chat" ? "chat node" : "seed reference"} at ${rate} msg/s (${rate * (cfg.users / cfg.rooms)} deliveries/s)\n\nCommit ${m.commit}, ${m.cores} cores, ${cfg.users} users in ${cfg.rooms} rooms.\n\n${summary}`;
}

function machine() {
  const cpus = os.cpus();
  let commit = "";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: REPO_ROOT }).toString().trim();
    // Uncommitted changes to the measured code make the commit id alone misleading.
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "services", "packages"], { cwd: REPO_ROOT }).toString().trim();
    if (dirty) commit += " + uncommitted changes";
  } catch {
    /* not a git checkout */
  }
  return {
    cpu: cpus[0]?.model ?? "unknown",
    cores: os.availableParallelism(),
    memGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    kernel: os.release(),
    commit,
    loadAvgAtStart: os.loadavg()[0] ?? 0,
  };
}

/** One system's rounds at one fixed load, in one room size. */
export interface FixedResult {
  system: SystemKind;
  /** The B side of `--fixed-ab`: the extra environment its node ran with. */
  variant?: Record<string, string>;
  roomSize: number;
  rooms: number;
  offeredRate: number;
  cpuUsPerDelivery: number[];
  cpuUsPerMessage: number[];
  /** The project's nodes: messages per store commit over each step (`chat_store_batch_size` from /metrics). */
  messagesPerCommit?: number[];
  p99: number[];
  deliveryRatio: number[];
  errors: number;
  medianCpuUsPerDelivery: number;
  medianCpuUsPerMessage: number;
  medianP99: number;
}

/** A project node's commits so far: `chat_store_batch_size`'s sum and count from its /metrics. */
async function storeBatches(url: string): Promise<{ sum: number; count: number } | undefined> {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    const read = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
    const sum = read("chat_store_batch_size_sum");
    const count = read("chat_store_batch_size_count");
    return Number.isFinite(sum) && Number.isFinite(count) ? { sum, count } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `--fixed`: every system up at once (so that a neighbour's burst hits them alike), one fixed rate
 * below saturation, rounds interleaved in alternating order, for each room size; the CPU read from
 * /proc over each step (send and drain, every thread of the server: the SQLite worker included).
 */
async function fixedLoad(kinds: SystemKind[], sizes: number[], rate: number, rounds: number): Promise<FixedResult[]> {
  const out: FixedResult[] = [];
  const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)] ?? 0;
  for (const size of sizes) {
    const rooms = Math.round(cfg.users / size);
    const running: { kind: SystemKind; variant?: Record<string, string>; r: Running; session?: LoadSession; steps: StepResult[]; perCommit: number[] }[] = [];
    const sides: { kind: SystemKind; variant?: Record<string, string> }[] = kinds.map((kind) => ({ kind }));
    if (Object.keys(abEnv).length > 0 && kinds.includes("chat")) sides.push({ kind: "chat", variant: abEnv });
    try {
      for (const { kind, variant } of sides) {
        const r = await launch(kind, { env: { ...envOf(kind), ...variant } });
        const x: (typeof running)[number] = { kind, ...(variant ? { variant } : {}), r, steps: [], perCommit: [] };
        running.push(x);
        x.session = (await openSession(kind, r, cfg.users, rooms)).session;
      }
      // A short warm-up step each (JIT, SQLite pages), not counted.
      for (const x of running) await x.session!.step(rate, 2);
      for (let round = 0; round < rounds; round++) {
        for (const x of round % 2 === 0 ? running : [...running].reverse()) {
          log(`fixed: rooms of ${size}, ${rate} msg/s, round ${round + 1}/${rounds}: ${x.kind}${x.variant ? ` (${envNote(x.variant)})` : ""}`);
          const before = x.kind === "chat" ? await storeBatches(x.r.url) : undefined;
          x.steps.push(await x.session!.step(rate, cfg.stepSeconds));
          const after = before && (await storeBatches(x.r.url));
          if (before && after) x.perCommit.push(Math.round((10 * (after.sum - before.sum)) / Math.max(1, after.count - before.count)) / 10);
          await pause(500);
        }
      }
    } finally {
      for (const x of running) {
        await x.session?.close().catch(() => {});
        await x.r.stop();
      }
    }
    for (const x of running) {
      const perDelivery = x.steps.map((s) => s.cpuUsPerDelivery ?? NaN);
      const perMessage = x.steps.map((s) => (s.serverCpuSeconds !== undefined && s.sent ? Math.round((s.serverCpuSeconds * 1e7) / s.sent) / 10 : NaN));
      out.push({
        system: x.kind,
        ...(x.variant ? { variant: x.variant } : {}),
        roomSize: size,
        rooms,
        offeredRate: rate,
        cpuUsPerDelivery: perDelivery,
        cpuUsPerMessage: perMessage,
        ...(x.perCommit.length > 0 ? { messagesPerCommit: x.perCommit } : {}),
        p99: x.steps.map((s) => s.latencyMs.p99),
        deliveryRatio: x.steps.map((s) => s.deliveryRatio),
        errors: x.steps.reduce((a, s) => a + s.errors, 0),
        medianCpuUsPerDelivery: median(perDelivery),
        medianCpuUsPerMessage: median(perMessage),
        medianP99: median(x.steps.map((s) => s.latencyMs.p99)),
      });
    }
  }
  return out;
}

function renderFixed(res: FixedResult[], m: ReturnType<typeof machine>, loadEnd: number, rounds: number): string {
  const f = (n: number, d = 1) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
  const lines = [
    `# pnpm bench --fixed, ${new Date().toISOString().slice(0, 16)} UTC`,
    "",
    `Commit ${m.commit}, ${m.cpu}, ${m.cores} cores, Node ${m.node}; ${cfg.users} users; load average ${m.loadAvgAtStart.toFixed(2)} at the start, ${loadEnd.toFixed(2)} at the end.`,
    `Server CPU from /proc over each step (send and drain, ${cfg.stepSeconds} s at the rate), every system up at once, ${rounds} rounds in alternating order, the median reported.`,
    "",
  ];
  for (const size of [...new Set(res.map((r) => r.roomSize))]) {
    const rows = res.filter((r) => r.roomSize === size);
    const seed = rows.find((r) => r.system === "seed");
    const raw = rows.find((r) => r.system === "raw");
    const a = rows.find((r) => r.system === "chat" && !r.variant);
    const b = rows.find((r) => r.system === "chat" && r.variant);
    const x0 = rows[0];
    lines.push(`## Rooms of ${size} (${x0?.rooms} rooms, ${x0?.offeredRate} msg/s, ${(x0?.offeredRate ?? 0) * size} deliveries/s)`, "");
    lines.push("| system | CPU µs per delivery | vs seed | vs raw floor | CPU µs per message | p99 ms | rounds (µs/delivery) | p99 rounds | min delivery ratio | errors |");
    lines.push("| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: |");
    for (const r of rows) {
      const vs = (b: FixedResult | undefined) => (b ? `${(r.medianCpuUsPerDelivery / b.medianCpuUsPerDelivery).toFixed(2)}×` : "–");
      lines.push(
        `| ${LABEL[r.system]}${r.variant ? `, ${envNote(r.variant)}` : ""} | ${f(r.medianCpuUsPerDelivery)} | ${vs(seed)} | ${vs(raw)} | ${f(r.medianCpuUsPerMessage)} | ${f(r.medianP99)} | ${r.cpuUsPerDelivery.map((v) => f(v)).join(", ")} | ${r.p99.map((v) => f(v)).join(", ")} | ${Math.min(...r.deliveryRatio)} | ${r.errors} |`,
      );
    }
    for (const r of rows) {
      if (r.messagesPerCommit) lines.push("", `Messages per store commit, ${LABEL[r.system]}${r.variant ? `, ${envNote(r.variant)}` : ""} (\`chat_store_batch_size\` over each round): ${r.messagesPerCommit.map((v) => f(v)).join(", ")}.`);
    }
    if (a && b) lines.push("", `A/B in this run: ${envNote(b.variant!)} costs ${(b.medianCpuUsPerDelivery / a.medianCpuUsPerDelivery).toFixed(2)}× the default node's CPU per delivery (${f(b.medianCpuUsPerDelivery)} against ${f(a.medianCpuUsPerDelivery)} µs).`);
    lines.push("");
  }
  return lines.join("\n");
}

async function mainFixed(): Promise<void> {
  const outDir = path.resolve(REPO_ROOT, args.get("out") ?? "bench/results");
  fs.mkdirSync(outDir, { recursive: true });
  const m = machine();
  const f = args.get("fixed");
  const sizes = f === undefined || f === "true" ? [20, 10, 1] : f.split(",").map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new UsageError(`--fixed takes room sizes, got ${f}`);
  const rate = num(args, "fixed-rate", 1500);
  const rounds = num(args, "fixed-rounds", 3);
  const kinds = args.has("systems") ? systems : (["seed", "raw", "chat"] as SystemKind[]);
  const at = new Date().toISOString();
  const res = await fixedLoad(kinds, sizes, rate, rounds);
  const loadEnd = os.loadavg()[0] ?? 0;
  const stamp = at.slice(0, 16).replace(/:/g, "");
  const md = renderFixed(res, m, loadEnd, rounds);
  fs.writeFileSync(path.join(outDir, `${stamp}-fixed.json`), JSON.stringify({ at, machine: { ...m, loadAvgAtEnd: loadEnd }, users: cfg.users, stepSeconds: cfg.stepSeconds, chatEnv, peerEnv, results: res }, null, 1) + "\n");
  fs.writeFileSync(path.join(outDir, `${stamp}-fixed.md`), md + "\n");
  console.log(md);
  log(`wrote ${path.relative(REPO_ROOT, path.join(outDir, stamp))}-fixed.{json,md}`);
}

/** One cluster shape's rounds: CPU seconds by role (nodes, redis, nginx) per step. */
export interface ScaleResult {
  nodes: number;
  adapter: "classic" | "sharded";
  offeredRate: number;
  roomSize: number;
  rounds: { delivered: number; sent: number; p99: number; deliveryRatio: number; errors: number; cpuSeconds: Record<string, number> }[];
  /** Medians over the rounds, µs per delivery: every process, and each role. */
  usPerDelivery: Record<string, number>;
  medianP99: number;
}

async function mainScale(): Promise<void> {
  const outDir = path.resolve(REPO_ROOT, args.get("out") ?? "bench/results");
  fs.mkdirSync(outDir, { recursive: true });
  const m = machine();
  const sv = args.get("scale");
  const counts = sv === undefined || sv === "true" ? [1, 2, 4] : sv.split(",").map(Number);
  if (counts.some((n) => !Number.isInteger(n) || n < 1)) throw new UsageError(`--scale takes node counts, got ${sv}`);
  const adapters = (args.get("scale-adapters") ?? "classic,sharded").split(",") as ("classic" | "sharded")[];
  if (adapters.some((a) => a !== "classic" && a !== "sharded")) throw new UsageError(`--scale-adapters takes classic and/or sharded`);
  const rate = num(args, "scale-rate", 1000);
  const rounds = num(args, "fixed-rounds", 3);
  const roomSize = 20;
  const at = new Date().toISOString();
  const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)] ?? 0;
  const out: ScaleResult[] = [];
  // Alternate the order of the shapes between adapters, so that drift does not favour one node count.
  for (const [ai, adapter] of adapters.entries()) {
    for (const nodes of ai % 2 === 0 ? counts : [...counts].reverse()) {
      log(`scale: ${nodes} node(s), ${adapter} adapter, ${rate} msg/s in rooms of ${roomSize}`);
      const r = await launch("cluster", { env: chatEnv, clusterNodes: nodes, redisAdapter: adapter });
      const res: ScaleResult = { nodes, adapter, offeredRate: rate, roomSize, rounds: [], usPerDelivery: {}, medianP99: 0 };
      try {
        const { session } = await openSession("cluster", r, cfg.users, Math.round(cfg.users / roomSize));
        try {
          await session.step(rate, 2);
          for (let round = 0; round < rounds; round++) {
            const groups = r.groups ?? { nodes: r.pids };
            const before = Object.fromEntries(Object.entries(groups).map(([k, pids]) => [k, cpuSecondsOfAll(pids) ?? NaN]));
            const s = await session.step(rate, cfg.stepSeconds);
            const cpuSeconds = Object.fromEntries(Object.entries(groups).map(([k, pids]) => [k, Math.round(((cpuSecondsOfAll(pids) ?? NaN) - (before[k] ?? NaN)) * 100) / 100]));
            res.rounds.push({ delivered: s.delivered, sent: s.sent, p99: s.latencyMs.p99, deliveryRatio: s.deliveryRatio, errors: s.errors, cpuSeconds });
            await pause(500);
          }
        } finally {
          await session.close();
        }
      } finally {
        await r.stop();
      }
      const roles = Object.keys(res.rounds[0]?.cpuSeconds ?? {});
      const us = (x: ScaleResult["rounds"][number], k?: string) =>
        x.delivered ? (((k ? x.cpuSeconds[k] : Object.values(x.cpuSeconds).reduce((a, b) => a + b, 0)) ?? 0) * 1e6) / x.delivered : NaN;
      res.usPerDelivery.total = Math.round(median(res.rounds.map((x) => us(x))) * 10) / 10;
      for (const k of roles) res.usPerDelivery[k] = Math.round(median(res.rounds.map((x) => us(x, k))) * 10) / 10;
      res.medianP99 = median(res.rounds.map((x) => x.p99));
      out.push(res);
    }
  }
  const loadEnd = os.loadavg()[0] ?? 0;
  const f = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? "–" : n.toFixed(1));
  const lines = [
    `# pnpm bench --scale, ${at.slice(0, 16)} UTC`,
    "",
    `Commit ${m.commit}, ${m.cpu}, ${m.cores} cores, Node ${m.node}; ${cfg.users} users in rooms of ${roomSize} through nginx, ${rate} msg/s (${rate * roomSize} deliveries/s); load average ${m.loadAvgAtStart.toFixed(2)} at the start, ${loadEnd.toFixed(2)} at the end.`,
    `CPU from /proc over each step (send and drain, ${cfg.stepSeconds} s), nodes + Redis + nginx (master and workers) summed; median of ${rounds} rounds. Every process shares the same 2 cores.`,
    "",
    "| adapter | nodes | CPU µs per delivery, all | vs 1 node | nodes | Redis | nginx | p99 ms | min delivery ratio | errors |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const x of out) {
    const one = out.find((y) => y.adapter === x.adapter && y.nodes === 1);
    lines.push(
      `| ${x.adapter} | ${x.nodes} | ${f(x.usPerDelivery.total)} | ${one?.usPerDelivery.total ? `${((x.usPerDelivery.total ?? 0) / one.usPerDelivery.total).toFixed(2)}×` : "–"} | ${f(x.usPerDelivery.nodes)} | ${f(x.usPerDelivery.redis)} | ${f(x.usPerDelivery.nginx)} | ${f(x.medianP99)} | ${Math.min(...x.rounds.map((y) => y.deliveryRatio))} | ${x.rounds.reduce((a, y) => a + y.errors, 0)} |`,
    );
  }
  const md = lines.join("\n");
  const stamp = at.slice(0, 16).replace(/:/g, "");
  fs.writeFileSync(path.join(outDir, `${stamp}-scale.json`), JSON.stringify({ at, machine: { ...m, loadAvgAtEnd: loadEnd }, users: cfg.users, stepSeconds: cfg.stepSeconds, chatEnv, results: out }, null, 1) + "\n");
  fs.writeFileSync(path.join(outDir, `${stamp}-scale.md`), md + "\n");
  console.log(md);
  log(`wrote ${path.relative(REPO_ROOT, path.join(outDir, stamp))}-scale.{json,md}`);
}

async function main(): Promise<void> {
  if (args.has("fixed")) return mainFixed();
  if (args.has("scale")) return mainScale();
  const started = Date.now();
  const outDir = path.resolve(REPO_ROOT, args.get("out") ?? "bench/results");
  fs.mkdirSync(outDir, { recursive: true });
  const result: BenchResult = { at: new Date().toISOString(), machine: machine(), config: { ...cfg, ladder, quick }, systems: [], idle: [], notes: [] };
  if (Object.keys(chatEnv).length > 0) result.notes.push(`the project's nodes ran with ${envNote(chatEnv)}`);
  if (Object.keys(peerEnv).length > 0) result.notes.push(`the seed reference and the raw floor ran with ${envNote(peerEnv)}`);
  const runnable = systems.filter((kind) => {
    if (kind !== "cluster" || clusterAvailable()) return true;
    result.notes.push("cluster: not run, infra/cluster/cluster.ts is not in this checkout yet");
    log("cluster: skipped (no infra/cluster/cluster.ts)");
    return false;
  });
  const ladders = new Map<SystemKind, SystemResult[]>();
  for (let round = 0; round < Math.max(1, cfg.ladders); round++) {
    // Alternate the order so that a drift of the machine's load does not favour one system.
    for (const kind of round % 2 === 0 ? runnable : [...runnable].reverse()) {
      // The seed's first ladder sets the rates every system is also measured at (its knee and half of it).
      const seed = ladders.get("seed")?.[0]?.saturation;
      const extra = seed ? [seed.offeredRate, Math.round(seed.offeredRate / 2)] : [];
      if (cfg.ladders > 1) log(`ladder ${round + 1}/${cfg.ladders}: ${kind}`);
      try {
        const got = await stepUp(kind, extra, kind === "cluster" && seed ? [seed.offeredRate] : []);
        ladders.set(kind, [...(ladders.get(kind) ?? []), got]);
      } catch (e) {
        result.notes.push(`${kind}: ladder ${round + 1} failed: ${e instanceof Error ? e.message : String(e)}`);
        log(`${kind}: failed: ${String(e)}`);
      }
    }
  }
  for (const kind of runnable) {
    const runs = ladders.get(kind);
    if (runs?.length) result.systems.push(medianLadder(runs));
  }
  const seedSat = result.systems.find((s) => s.system === "seed")?.saturation;
  // The cluster target is judged at the seed's reported (median) saturation rate, but its ladders ran
  // at the seed's first ladder's rate, which may differ: measure that rate once more if none did.
  const cluster = result.systems.find((s) => s.system === "cluster");
  if (seedSat && cluster && !cluster.steps.some((s) => s.offeredRate === seedSat.offeredRate)) {
    try {
      const extra = await stepUp("cluster", [], [seedSat.offeredRate], []);
      cluster.steps = [...cluster.steps, ...extra.steps].sort((a, b) => a.offeredRate - b.offeredRate);
      result.notes.push(`cluster: measured at the seed's median saturation rate (${seedSat.offeredRate} msg/s) after the ladders, on fresh connections`);
    } catch (e) {
      result.notes.push(`cluster: the step at the seed's saturation rate failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (seedSat && cfg.halfRounds > 0) {
    const kinds = result.systems.map((s) => s.system);
    try {
      result.halfSeed = await latencyAt(kinds, Math.round(seedSat.offeredRate / 2), cfg.halfRounds);
    } catch (e) {
      result.notes.push(`latency at half the seed's saturation: failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (cfg.idle > 0) {
    for (const kind of (["chat", "seed", "raw"] as const).filter((k) => systems.includes(k))) {
      log(`${kind}: ${cfg.idle} idle connections`);
      try {
        result.idle.push(await idleMemory(kind));
      } catch (e) {
        result.notes.push(`${kind} idle memory: failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
  const stamp = result.at.slice(0, 16).replace(/:/g, "");
  const profiles = args.get("profile");
  if (profiles !== undefined) {
    // --profile: the chat node at its saturation rate; --profile chat,seed --profile-rate 3000: both, same rate.
    const kinds = (profiles === "true" ? "chat" : profiles).split(",") as ("chat" | "seed")[];
    const chat = result.systems.find((s) => s.system === "chat");
    const rate = num(args, "profile-rate", chat?.saturation?.offeredRate ?? 3000);
    for (const kind of kinds) {
      if (kind !== "chat" && kind !== "seed") throw new Error(`--profile takes chat and/or seed, not ${kind}`);
      const md = await profileSystem(kind, rate);
      const name = `${stamp}-profile${kind === "chat" ? "" : `-${kind}`}.md`;
      fs.writeFileSync(path.join(outDir, name), md);
      result.notes.push(`profile: ${name} (${kind} at ${rate} msg/s)`);
    }
  }
  result.durationS = Math.round((Date.now() - started) / 1000);
  result.machine.loadAvgAtEnd = os.loadavg()[0] ?? 0;
  if (systems.length === 0) return;
  fs.writeFileSync(path.join(outDir, `${stamp}.json`), JSON.stringify(result, null, 1) + "\n");
  fs.writeFileSync(path.join(outDir, `${stamp}.svg`), renderSvg(result));
  fs.writeFileSync(path.join(outDir, `${stamp}.md`), renderMarkdown(result, `${stamp}.svg`));
  console.log(renderMarkdown(result, `${stamp}.svg`));
  log(`wrote ${path.relative(REPO_ROOT, path.join(outDir, stamp))}.{json,md,svg} in ${result.durationS} s`);
}

main()
  .catch(async (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
