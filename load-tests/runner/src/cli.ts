/**
 * `pnpm loadtest -- --url http://127.0.0.1:3001 --users 1000 --rooms 100 --rate 500 --duration 20`
 *
 * Options: --target chat|seed|raw (default chat), --workers n (forked processes; 0 = this one;
 * default: cores − 1, at least 1), --rates 200,400,800 (several steps on the same connections,
 * instead of --rate), --secret (default $JWT_SECRET, else the node's development secret), --server-pid 123[,456] (RSS per connection),
 * --connect-concurrency n, --out result.json. Prints the JSON result on stdout, progress on stderr.
 */
import fs from "node:fs";
import os from "node:os";
import { num, parseArgs } from "./args.ts";
import { buildPlan, TARGETS, type Target } from "./plan.ts";
import { LoadSession } from "./session.ts";
import { DEV_SECRET } from "../../../services/chat-node/src/config.ts";

const usage = "usage: pnpm loadtest -- --url <http://host:port> [--target chat|seed|raw] --users N --rooms M --rate R --duration S";

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.has("help")) {
    console.log(usage);
    return;
  }
  const url = args.get("url");
  if (!url) throw new Error(usage);
  const target = (args.get("target") ?? "chat") as Target;
  if (!TARGETS.includes(target)) throw new Error(`--target must be one of ${TARGETS.join(", ")}`);
  let secret = args.get("secret") ?? process.env.JWT_SECRET ?? "";
  if (target === "chat" && !secret) {
    // As `pnpm token` does: a node started without JWT_SECRET (./scripts/start.sh) signs with the development secret.
    secret = DEV_SECRET;
    console.error("no --secret or JWT_SECRET: minting tokens with the development secret, as a node started without JWT_SECRET uses");
  }
  const users = num(args, "users", 100);
  const rooms = num(args, "rooms", Math.max(1, Math.floor(users / 10)));
  const duration = num(args, "duration", 10);
  const rates = (args.get("rates") ?? String(num(args, "rate", 100))).split(",").map(Number);
  const workers = num(args, "workers", Math.max(1, os.availableParallelism() - 1));
  const serverPids = (args.get("server-pid") ?? "").split(",").filter(Boolean).map(Number);

  const plan = await buildPlan({ target, url: url.replace(/\/+$/, ""), users, rooms, secret });
  const session = new LoadSession(plan, { workers, serverPids, progress: true, connectConcurrency: num(args, "connect-concurrency", 64) });
  try {
    const connect = await session.connect();
    const steps = [];
    for (const rate of rates) steps.push(await session.step(rate, duration));
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
    const out = args.get("out");
    if (out) fs.writeFileSync(out, text + "\n");
    console.log(text);
  } finally {
    await session.close();
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
