/**
 * `node services/chat-node/bench/rate-limit-bench.ts`: what one rate-limit check costs, in-process,
 * against a real local Redis (Debian's redis-server on a free loopback port, stopped at the end):
 *
 * - the node's token bucket alone (the synchronous local check),
 * - the hybrid (src/rate-limit.ts with Redis: the local check, the settlement batched every 50 ms),
 * - rate-limiter-flexible's RateLimiterMemory, awaited,
 * - RateLimiterRedis awaited per check (with a RateLimiterMemory insuranceLimiter), one at a time
 *   (the latency a send would wait) and 100 in flight (the throughput one connection gives).
 *
 * 1,000 users, checks spread over them round-robin, limits high enough that nothing is refused.
 * Prints a Markdown table; a benchmark, not a test: it reports, it asserts nothing.
 *   node services/chat-node/bench/rate-limit-bench.ts [--checks 200000]
 */
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { RateLimiterMemory, RateLimiterRedis } from "rate-limiter-flexible";
import { startRedis, stopAll } from "@chat/test-kit";
import { TokenBuckets, createRateLimiter } from "../src/rate-limit.ts";

const { values: args } = parseArgs({ args: process.argv.slice(2).filter((a) => a !== "--"), options: { checks: { type: "string", default: "200000" } } });
const N = Number(args.checks);
const USERS = Array.from({ length: 1000 }, (_, i) => `user-${i}`);
const HIGH = { perSec: 1e6, burst: 1e6 };

interface Row {
  what: string;
  checks: number;
  ms: number;
  note: string;
}
const rows: Row[] = [];
const record = (what: string, checks: number, ms: number, note = "") => rows.push({ what, checks, ms, note });

async function timed(what: string, checks: number, run: () => Promise<void> | void, note = ""): Promise<void> {
  const t0 = performance.now();
  await run();
  record(what, checks, performance.now() - t0, note);
}

const redis = await startRedis();
const client = new Redis(redis.url);
try {
  await client.ping();
  const buckets = new TokenBuckets(HIGH);
  await timed("token bucket (local, synchronous)", N, () => {
    for (let i = 0; i < N; i++) buckets.take(USERS[i % USERS.length]!);
  });

  const hybrid = createRateLimiter({ disabled: false, buckets: { send: HIGH }, redis: client, keyPrefix: "bench-h", syncMs: 50 });
  const before = Number((await client.info("stats")).match(/total_commands_processed:(\d+)/)?.[1] ?? 0);
  await timed("hybrid: local check + batched Redis settlement (50 ms)", N, async () => {
    for (let i = 0; i < N; i++) {
      hybrid.check("send", USERS[i % USERS.length]!);
      // Yield now and then so that the settlement timer runs as it would between socket events.
      if (i % 5000 === 4999) await new Promise((r) => setImmediate(r));
    }
  });
  await new Promise((r) => setTimeout(r, 200)); // the last settlement, outside the timing
  const after = Number((await client.info("stats")).match(/total_commands_processed:(\d+)/)?.[1] ?? 0);
  rows.at(-1)!.note = `${after - before - 1} Redis commands for ${N} checks (the settlements run in the background)`;
  hybrid.close();

  const memory = new RateLimiterMemory({ points: 1e6, duration: 1 });
  await timed("RateLimiterMemory, awaited", N, async () => {
    for (let i = 0; i < N; i++) await memory.consume(USERS[i % USERS.length]!);
  });

  const insured = new RateLimiterRedis({ storeClient: client, keyPrefix: "bench-r", points: 1e6, duration: 10, insuranceLimiter: new RateLimiterMemory({ points: 1e6, duration: 10 }) });
  const serial = Math.min(N, 20_000);
  await timed("RateLimiterRedis (+ insurance), awaited one at a time", serial, async () => {
    for (let i = 0; i < serial; i++) await insured.consume(USERS[i % USERS.length]!);
  }, "the latency each send would wait");
  const inflight = 100;
  await timed(`RateLimiterRedis (+ insurance), ${inflight} in flight`, N, async () => {
    let next = 0;
    await Promise.all(
      Array.from({ length: inflight }, async () => {
        while (next < N) await insured.consume(USERS[next++ % USERS.length]!);
      }),
    );
  }, "Redis-bound throughput of one connection");
} finally {
  client.disconnect();
  await stopAll();
}

console.log(`\nRate-limit check cost, ${new Date().toISOString()}, Node ${process.version}, 1,000 users\n`);
console.log("| check | checks | total ms | µs per check | checks/s | note |");
console.log("| --- | ---: | ---: | ---: | ---: | --- |");
for (const r of rows) {
  const us = (r.ms * 1000) / r.checks;
  console.log(`| ${r.what} | ${r.checks} | ${r.ms.toFixed(0)} | ${us < 1 ? us.toFixed(3) : us.toFixed(1)} | ${Math.round(r.checks / (r.ms / 1000)).toLocaleString("en-US")} | ${r.note} |`);
}
