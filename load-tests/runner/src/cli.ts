/**
 * `pnpm loadtest -- --url http://127.0.0.1:3001 --users 1000 --rooms 100 --rate 500 --duration 20`
 *
 * Every option, with its default, is in USAGE below (`pnpm loadtest -- --help`). The command line is
 * read by args.ts, as `pnpm bench`'s is: --help (-h) prints the usage and exits 0 without starting
 * anything; an unknown option or a bad value (a rate or duration that is not above 0, an unreadable
 * --server-pid, …) prints the problem and the usage on stderr and exits 2 before anything connects.
 * Prints the JSON result on stdout, progress on stderr; a failed run exits 1.
 */
import fs from "node:fs";
import os from "node:os";
import { num, positive, positiveList, readArgs, UsageError, type CommandSpec } from "./args.ts";
import { buildPlan, TARGETS, type Target } from "./plan.ts";
import { rssOf } from "./proc-mem.ts";
import { LoadSession } from "./session.ts";
import { DEV_SECRET } from "@chat/chat-node/config";

const defaultWorkers = Math.max(1, os.availableParallelism() - 1);

const USAGE = `usage: pnpm loadtest -- --url <http://host:port> [option...]
  --url http://host:port       the server to load (required): a chat node, the seed reference or the raw floor
  --target chat|seed|raw       its wire flavour (default chat)
  --users n                    connections, one user each (default 100)
  --rooms n                    conversations, user i joins room i % n; 0: nobody joins (default users / 10, at least 1)
  --rate r                     offered messages per second, above 0 (default 100)
  --rates r1,r2,...            several steps on the same connections instead of --rate, each above 0
  --duration s                 seconds per step, above 0 (default 10)
  --workers n                  forked load-generator processes; 0: all in this process (default cores − 1, at least 1: ${defaultWorkers} here)
  --secret s                   JWT secret for --target chat (default $JWT_SECRET, else the node's development secret)
  --server-pid p[,p...]        server processes whose RSS and CPU are reported (Linux /proc; each must be readable; default none)
  --connect-concurrency n      connections opened at once (default 64)
  --out file                   also write the JSON result to this file (default: stdout only)
  --help, -h                   this text
Prints the JSON result on stdout, progress on stderr.
`;

const LOADTEST: CommandSpec = {
  name: "pnpm loadtest",
  usage: USAGE,
  options: {
    url: "value",
    target: "value",
    users: "value",
    rooms: "value",
    rate: "value",
    rates: "value",
    duration: "value",
    workers: "value",
    secret: "value",
    "server-pid": "value",
    "connect-concurrency": "value",
    out: "value",
  },
};

/** A whole number ≥ `min`. */
function whole(args: Map<string, string>, name: string, dflt: number, min = 0): number {
  const n = num(args, name, dflt);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be a whole number ≥ ${min}, got ${args.get(name)}`);
  return n;
}

interface Config {
  url: string;
  target: Target;
  secret: string;
  users: number;
  rooms: number;
  rates: number[];
  duration: number;
  workers: number;
  serverPids: number[];
  connectConcurrency: number;
  out?: string;
}

/** Every check on the command line, before anything connects: a UsageError exits 2 with the usage. */
function configOf(args: Map<string, string>): Config {
  const rawUrl = args.get("url");
  if (rawUrl === undefined) throw new UsageError("--url is required");
  let parsed: URL;
  try {
    parsed = new URL(rawUrl);
  } catch {
    throw new UsageError(`--url must be an http:// or https:// address, got ${rawUrl}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new UsageError(`--url must be an http:// or https:// address, got ${rawUrl}`);
  const target = (args.get("target") ?? "chat") as Target;
  if (!TARGETS.includes(target)) throw new UsageError(`--target must be one of ${TARGETS.join(", ")}, got ${target}`);
  const users = whole(args, "users", 100, 1);
  const rooms = whole(args, "rooms", Math.max(1, Math.floor(users / 10)));
  if (rooms > users) throw new UsageError(`--rooms (${rooms}) must not exceed --users (${users}): a room would have no member`);
  if (args.has("rate") && args.has("rates")) throw new UsageError("give --rate or --rates, not both");
  const rates = args.has("rates") ? positiveList(args, "rates", []) : [positive(args, "rate", 100)];
  const duration = positive(args, "duration", 10);
  const workers = whole(args, "workers", defaultWorkers);
  const connectConcurrency = whole(args, "connect-concurrency", 64, 1);
  const pidArg = args.get("server-pid");
  const pids = (pidArg === undefined ? [] : pidArg.split(",")).map((p) => {
    const pid = Number(p);
    if (p.trim() === "" || !Number.isInteger(pid) || pid <= 0) throw new UsageError(`--server-pid takes process ids, got ${JSON.stringify(p)} in ${pidArg}`);
    return pid;
  });
  // A pid given twice would count its RSS and CPU twice.
  const serverPids = [...new Set(pids)];
  for (const pid of serverPids) {
    if (rssOf(pid) === undefined) throw new UsageError(`--server-pid ${pid}: cannot read /proc/${pid}/status (no such process, or not Linux)`);
  }
  let secret = args.get("secret") ?? process.env.JWT_SECRET ?? "";
  if (target === "chat" && !secret) {
    // As `pnpm token` does: a node started without JWT_SECRET (./scripts/start.sh) signs with the development secret.
    secret = DEV_SECRET;
    console.error("no --secret or JWT_SECRET: minting tokens with the development secret, as a node started without JWT_SECRET uses");
  }
  return { url: rawUrl.replace(/\/+$/, ""), target, secret, users, rooms, rates, duration, workers, serverPids, connectConcurrency, out: args.get("out") };
}

async function main(): Promise<void> {
  const cfg = await readArgs(process.argv.slice(2), LOADTEST, configOf);
  const { url, target, users, rooms, workers } = cfg;
  const plan = await buildPlan({ target, url, users, rooms, secret: cfg.secret });
  const session = new LoadSession(plan, { workers, serverPids: cfg.serverPids, progress: true, connectConcurrency: cfg.connectConcurrency });
  try {
    const connect = await session.connect();
    if (connect.connections === 0) {
      throw new Error(`no connection to ${url} succeeded (${connect.connectErrors} errors${connect.errorSamples[0] ? `, e.g. ${connect.errorSamples[0]}` : ""})`);
    }
    const steps = [];
    for (const rate of cfg.rates) steps.push(await session.step(rate, cfg.duration));
    const first = steps[0];
    const result = {
      target,
      url,
      users,
      rooms,
      workers,
      at: new Date().toISOString(),
      ...connect,
      ...(steps.length === 1 && first ? first : { steps }),
    };
    const text = JSON.stringify(result, null, 2);
    if (cfg.out) fs.writeFileSync(cfg.out, text + "\n");
    console.log(text);
  } finally {
    await session.close();
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
