/**
 * The load runner, briefly and with small numbers, against the real chat node and the two peers
 * of the benchmark. Counts only: these machines are shared, so nothing here asserts a speed.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { WebSocketServer, type WebSocket } from "ws";
import { startNode, stopAll, tempDir, TEST_SECRET, type NodeHandle } from "@chat/test-kit";
import { buildPlan } from "../src/plan.ts";
import { LoadSession } from "../src/session.ts";
import { launch } from "../src/launch.ts";
import { Histogram } from "../src/hist.ts";
import { rssOf } from "../src/proc-mem.ts";

async function run(target: "chat" | "seed" | "raw", url: string, workers: number, serverPids: number[] = []) {
  const plan = await buildPlan({ target, url, users: 12, rooms: 3, secret: TEST_SECRET });
  const session = new LoadSession(plan, { workers, serverPids });
  try {
    const connect = await session.connect();
    const step = await session.step(12, 1);
    return { connect, step };
  } finally {
    await session.close();
  }
}

describe("load runner", () => {
  let node: NodeHandle;
  before(async () => {
    node = await startNode({ RATE_LIMIT_DISABLED: "1" });
  });
  after(() => stopAll());

  test("in-process: every message sent reaches every member of its conversation", async () => {
    const { connect, step } = await run("chat", node.url, 0, [node.pid]);
    assert.equal(connect.connections, 12);
    assert.equal(connect.connectErrors, 0);
    assert.ok((connect.serverRssAfter ?? 0) > 0, "reads the server's RSS");
    assert.equal(step.sent, 12);
    assert.equal(step.expected, 12 * 4, "rooms of 4: each message is expected 4 times");
    assert.equal(step.delivered, step.expected);
    assert.equal(step.deliveryRatio, 1);
    assert.equal(step.errors, 0);
    assert.equal(step.latencyMs.count, step.delivered);
  });

  test("two forked worker processes add up to the same counts", async () => {
    const { connect, step } = await run("chat", node.url, 2);
    assert.equal(connect.connections, 12);
    assert.equal(step.sent, 12);
    assert.equal(step.delivered, 48);
    assert.equal(step.deliveryRatio, 1);
  });

  test("the seed reference and the raw floor carry the same load", async () => {
    for (const kind of ["seed", "raw"] as const) {
      const server = await launch(kind);
      try {
        const { connect, step } = await run(kind, server.url, 0, server.pids);
        assert.equal(connect.connections, 12, kind);
        assert.equal(step.sent, 12, kind);
        assert.equal(step.delivered, 48, kind);
      } finally {
        await server.stop();
      }
    }
  });

  test("the CLI prints a JSON result", () => {
    const cli = path.join(import.meta.dirname, "../src/cli.ts");
    const r = spawnSync(
      process.execPath,
      // The pid twice: counted once.
      [cli, "--url", node.url, "--users", "10", "--rooms", "2", "--rate", "10", "--duration", "1", "--workers", "1", "--secret", TEST_SECRET, "--server-pid", `${node.pid},${node.pid}`],
      { encoding: "utf8", timeout: 120_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, number>;
    assert.equal(out.connections, 10);
    assert.equal(out.sent, 10);
    assert.equal(out.expected, 50);
    assert.equal(out.delivered, 50);
    assert.equal(out.deliveryRatio, 1);
    for (const k of ["deliveriesPerSec", "serverRssPerConnection", "connectWallMs"]) assert.equal(typeof out[k], "number", k);
    const rss = rssOf(node.pid) ?? 0;
    assert.ok((out.serverRssAfter ?? 0) < 1.5 * rss, `the node's RSS once: ${out.serverRssAfter} against ${rss} read now`);
  });
});

test("pnpm bench, tiny: two ladders per system in alternating order, the median reported with every ladder's figure", () => {
  const out = tempDir("chat-bench-out-");
  const bench = path.join(import.meta.dirname, "../src/bench.ts");
  const r = spawnSync(
    process.execPath,
    [bench, "--systems", "seed,raw", "--ladders", "2", "--users", "20", "--rooms", "4", "--rates", "20,40", "--step-seconds", "1", "--half-rounds", "0", "--idle", "0", "--out", out],
    { encoding: "utf8", timeout: 180_000 },
  );
  assert.equal(r.status, 0, r.stderr.slice(-2000));
  const order = [...r.stderr.matchAll(/ladder (\d)\/2: (\w+)/g)].map((m) => `${m[1]}:${m[2]}`);
  assert.deepEqual(order, ["1:seed", "1:raw", "2:raw", "2:seed"]);
  const json = fs.readdirSync(out).find((f) => f.endsWith(".json"));
  assert.ok(json, "a JSON result");
  const result = JSON.parse(fs.readFileSync(path.join(out, json), "utf8")) as { systems: { system: string; ladders?: number[]; saturation?: { deliveriesPerSec: number } }[] };
  for (const s of result.systems) {
    assert.equal(s.ladders?.length, 2, s.system);
    // 40 msg/s in rooms of 5 is 200 deliveries/s: both ladders pass every step.
    assert.deepEqual(s.ladders, [200, 200], s.system);
    assert.equal(s.saturation?.deliveriesPerSec, 200);
  }
  const md = fs.readFileSync(path.join(out, json.replace(/json$/, "md")), "utf8");
  assert.match(md, /ladders 200, 200/);
  assert.match(md, /raw ws floor: 1\.00×, 1\.00×/);
});

test("pnpm bench --fixed, tiny: every system's CPU µs per delivery and p99 per room size, rounds in alternating order", () => {
  const out = tempDir("chat-bench-fixed-");
  const bench = path.join(import.meta.dirname, "../src/bench.ts");
  const r = spawnSync(
    process.execPath,
    [bench, "--fixed", "5,1", "--systems", "seed,raw", "--users", "20", "--fixed-rate", "20", "--fixed-rounds", "2", "--step-seconds", "1", "--out", out],
    { encoding: "utf8", timeout: 180_000 },
  );
  assert.equal(r.status, 0, r.stderr.slice(-2000));
  const order = [...r.stderr.matchAll(/rooms of (\d+), 20 msg\/s, round (\d)\/2: (\w+)/g)].map((m) => `${m[1]}:${m[2]}:${m[3]}`);
  assert.deepEqual(order, ["5:1:seed", "5:1:raw", "5:2:raw", "5:2:seed", "1:1:seed", "1:1:raw", "1:2:raw", "1:2:seed"]);
  const json = fs.readdirSync(out).find((f) => f.endsWith("-fixed.json"));
  assert.ok(json, "a JSON result");
  const result = JSON.parse(fs.readFileSync(path.join(out, json), "utf8")) as {
    results: { system: string; roomSize: number; cpuUsPerDelivery: number[]; deliveryRatio: number[]; medianCpuUsPerDelivery: number }[];
  };
  assert.deepEqual(result.results.map((x) => `${x.system}:${x.roomSize}`), ["seed:5", "raw:5", "seed:1", "raw:1"]);
  for (const x of result.results) {
    assert.equal(x.cpuUsPerDelivery.length, 2, `${x.system} rooms of ${x.roomSize}`);
    // /proc counts in 10 ms ticks: a 1 s step of a nearly idle server may read 0, never negative or missing.
    for (const v of x.cpuUsPerDelivery) assert.ok(Number.isFinite(v) && v >= 0, `${x.system}: ${v}`);
    assert.deepEqual(x.deliveryRatio, [1, 1], x.system);
  }
  const md = fs.readFileSync(path.join(out, json.replace(/json$/, "md")), "utf8");
  assert.match(md, /## Rooms of 5 \(4 rooms, 20 msg\/s, 100 deliveries\/s\)/);
  assert.match(md, /\| raw ws floor \| [\d.,]+ \| /);
});

test("pnpm bench --fixed --fixed-ab: a second project node with the extra environment in the same rounds, and the A/B ratio", () => {
  const out = tempDir("chat-bench-ab-");
  const bench = path.join(import.meta.dirname, "../src/bench.ts");
  const r = spawnSync(
    process.execPath,
    [bench, "--fixed", "5", "--systems", "chat", "--fixed-ab", "SQLITE_THREAD=main", "--users", "20", "--fixed-rate", "20", "--fixed-rounds", "2", "--step-seconds", "1", "--out", out],
    { encoding: "utf8", timeout: 180_000 },
  );
  assert.equal(r.status, 0, r.stderr.slice(-2000));
  const order = [...r.stderr.matchAll(/rooms of 5, 20 msg\/s, round (\d)\/2: (chat(?: \(SQLITE_THREAD=main\))?)/g)].map((m) => `${m[1]}:${m[2]}`);
  assert.deepEqual(order, ["1:chat", "1:chat (SQLITE_THREAD=main)", "2:chat (SQLITE_THREAD=main)", "2:chat"]);
  const json = fs.readdirSync(out).find((f) => f.endsWith("-fixed.json"))!;
  const result = JSON.parse(fs.readFileSync(path.join(out, json), "utf8")) as { results: { system: string; variant?: Record<string, string>; deliveryRatio: number[]; messagesPerCommit?: number[] }[] };
  assert.deepEqual(result.results.map((x) => [x.system, x.variant]), [["chat", undefined], ["chat", { SQLITE_THREAD: "main" }]]);
  for (const x of result.results) {
    assert.deepEqual(x.deliveryRatio, [1, 1]);
    // Read from each node's /metrics around each round: at least one message per commit.
    assert.equal(x.messagesPerCommit?.length, 2, JSON.stringify(x));
    for (const v of x.messagesPerCommit!) assert.ok(v >= 1, `messages per commit ${v}`);
  }
  const md = fs.readFileSync(path.join(out, json.replace(/json$/, "md")), "utf8");
  assert.match(md, /\| project, 1 node[^|]*, SQLITE_THREAD=main \| [\d.,]+ \| /);
  assert.match(md, /Messages per store commit, project, 1 node[^:]*, SQLITE_THREAD=main \(`chat_store_batch_size` over each round\): [\d.]+, [\d.]+\./);
  assert.match(md, /A\/B in this run: SQLITE_THREAD=main costs [\d.]+× the default node's CPU per delivery/);
});

test("histogram quantiles", () => {
  const h = new Histogram();
  for (let i = 1; i <= 1000; i++) h.record(i / 10); // 0.1 .. 100 ms
  const s = h.summary();
  assert.equal(s.count, 1000);
  assert.ok(Math.abs(s.p50 - 50) <= 0.2, `p50 ${s.p50}`);
  assert.ok(Math.abs(s.p99 - 99) <= 0.2, `p99 ${s.p99}`);
  assert.equal(s.max, 100);
  const merged = new Histogram();
  merged.addSparse(h.toSparse());
  assert.deepEqual(merged.summary(), s);
});

test("pnpm bench --help prints the options and starts nothing; an unknown option is an error", () => {
  const bench = path.join(import.meta.dirname, "..", "src", "bench.ts");
  const help = spawnSync(process.execPath, [bench, "--help"], { encoding: "utf8", timeout: 20_000 });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /usage: pnpm bench/);
  assert.match(help.stdout, /--ladders/);
  assert.doesNotMatch(help.stdout + help.stderr, /offering|connections in/, "no system was started");
  const wrong = spawnSync(process.execPath, [bench, "--user", "10"], { encoding: "utf8", timeout: 20_000 });
  assert.equal(wrong.status, 2);
  assert.match(wrong.stderr, /--user/);
  assert.match(wrong.stderr, /usage: pnpm bench/);
  // The command line is read by the same parser as pnpm loadtest's (args.ts): --quick takes no value.
  const stray = spawnSync(process.execPath, [bench, "--quick", "stray"], { encoding: "utf8", timeout: 20_000 });
  assert.equal(stray.status, 2);
  assert.match(stray.stderr, /unexpected argument stray/);
});

const cli = path.join(import.meta.dirname, "..", "src", "cli.ts");
const runCli = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", timeout: 20_000 });
const OPTIONS = ["--url", "--target", "--users", "--rooms", "--rate", "--rates", "--duration", "--workers", "--secret", "--server-pid", "--connect-concurrency", "--out", "--help"];

test("pnpm loadtest --help lists every option with its default and starts nothing", () => {
  for (const flag of ["--help", "-h"]) {
    const r = runCli([flag, "--url", "http://127.0.0.1:9"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^usage: pnpm loadtest/);
    for (const o of OPTIONS) assert.match(r.stdout, new RegExp(`^  ${o}[ ,=]`, "m"), `${o} in the usage`);
    for (const d of ["default chat", "default 100", "default 10", "default 64", "default users / 10"]) assert.ok(r.stdout.includes(d), d);
    assert.equal(r.stderr, "", "nothing was started");
  }
});

test("pnpm loadtest rejects bad input with exit 2 and the usage, before connecting anything", () => {
  // pid_max is one above the highest pid the kernel hands out: no such process.
  const noPid = fs.readFileSync("/proc/sys/kernel/pid_max", "utf8").trim();
  const url = ["--url", "http://127.0.0.1:9"];
  const cases: [string[], RegExp][] = [
    [[...url, "--usres", "20"], /unknown option --usres/],
    [[...url, "--rates", "10,abc"], /--rates must be a number above 0, got "abc"/],
    [[...url, "--rates", "10,,20"], /--rates must be a number above 0/],
    [[...url, "--rates", "10,-5"], /--rates must be a number above 0/],
    [[...url, "--rate", "0"], /--rate must be a number above 0/],
    [[...url, "--rate", "x"], /--rate must be a number above 0/],
    [[...url, "--duration", "0"], /--duration must be a number above 0/],
    [[...url, "--rate", "5", "--rates", "5,10"], /--rate or --rates, not both/],
    [[...url, "--server-pid", noPid], new RegExp(`--server-pid ${noPid}: cannot read`)],
    [[...url, "--server-pid", "12,abc"], /--server-pid takes process ids/],
    [[...url, "--users", "-5"], /--users must be a non-negative number/],
    [[...url, "--rooms", "20", "--users", "10"], /--rooms \(20\) must not exceed --users \(10\)/],
    [[...url, "--target", "foo"], /--target must be one of chat, seed, raw/],
    [[...url, "stray"], /unexpected argument stray/],
    [["--users", "10"], /--url is required/],
    [["--url"], /--url needs a value/],
    [["--url", "127.0.0.1:9"], /--url must be an http/],
  ];
  for (const [args, message] of cases) {
    const r = runCli(args);
    const what = args.join(" ");
    assert.equal(r.status, 2, `${what}: ${r.stderr}`);
    assert.match(r.stderr, message, what);
    assert.match(r.stderr, /usage: pnpm loadtest/, what);
    assert.equal(r.stdout, "", what);
    assert.doesNotMatch(r.stderr, /connecting|connected \d|POST|fetch failed/, `${what}: nothing was started`);
  }
});

test("pnpm loadtest against an unreachable --url names the URL", async () => {
  // A port that was free a moment ago: nothing listens on it.
  const port = await new Promise<number>((resolve) => {
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const p = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  for (const target of ["chat", "raw"]) {
    const r = runCli(["--url", url, "--target", target, "--users", "2", "--rooms", "1", "--workers", "0", "--duration", "1", "--secret", TEST_SECRET]);
    assert.equal(r.status, 1, `${target}: ${r.stderr}`);
    assert.ok(r.stderr.includes(url), `${target} names ${url}: ${r.stderr}`);
    assert.match(r.stderr, /ECONNREFUSED/, target);
  }
});

test("each step reports its own dropped connections", async () => {
  // A raw-floor look-alike that cuts the connection of the first sender of step 1.
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((r) => wss.once("listening", () => r()));
  const rooms = new Map<string, Set<WebSocket>>();
  let cut = 0;
  wss.on("connection", (ws) => {
    ws.on("message", (data: Buffer) => {
      const m = JSON.parse(data.toString()) as { t: string; room: string; msg?: string };
      if (m.t === "join") {
        const set = rooms.get(m.room) ?? new Set<WebSocket>();
        set.add(ws);
        rooms.set(m.room, set);
      } else if (m.t === "send") {
        if (m.msg?.startsWith("s1|") && cut === 0) {
          cut++;
          rooms.get(m.room)?.delete(ws);
          ws.terminate();
          return;
        }
        for (const peer of rooms.get(m.room) ?? []) peer.send(JSON.stringify({ room: m.room, msg: m.msg }));
      }
    });
  });
  const url = `http://127.0.0.1:${(wss.address() as net.AddressInfo).port}`;
  const plan = await buildPlan({ target: "raw", url, users: 4, rooms: 1, secret: "" });
  const session = new LoadSession(plan, { workers: 0, drainTimeoutMs: 500 });
  try {
    const connect = await session.connect();
    assert.equal(connect.connections, 4);
    const steps = [await session.step(8, 0.5), await session.step(8, 0.5), await session.step(8, 0.5)];
    assert.equal(cut, 1);
    assert.deepEqual(steps.map((s) => s.dropped), [1, 0, 0], "the drop counts in step 1 only");
  } finally {
    await session.close();
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
  }
});
