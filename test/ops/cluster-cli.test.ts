/**
 * `pnpm cluster` checks its own variables as a node checks its configuration: a malformed one stops
 * the launcher before it starts anything, with one line naming it and exit 78 (EX_CONFIG), not a
 * stack trace; and a switch takes the node's switch words, not anything at all. Its commands act on
 * the running launcher (control socket) and its signals do the same: a rolling restart that
 * replaces every node process and leaves the clients spread, scaling out and in, status, stop.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { io, type Socket } from "socket.io-client";
import { REPO_ROOT, TEST_SECRET, eventually, mintToken, sleep, startProcess, stopAll, tempDir, waitForOutput } from "@chat/test-kit";

const CLI = path.join(REPO_ROOT, "infra/cluster/cli.ts");

async function runLauncher(env: Record<string, string>): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const p = startProcess(process.execPath, [CLI], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, CLUSTER_DIR: tempDir("cluster-cli-"), ...env },
  });
  let stderr = "";
  let stdout = "";
  p.proc.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  p.proc.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), 20_000)));
    const result = await Promise.race([p.exited, timeout]);
    assert.notEqual(result, "timeout", `the launcher still ran after 20 s (it should have refused its configuration):\n${stdout}\n${stderr}`);
    return { code: result === "timeout" ? null : result.code, stderr, stdout };
  } finally {
    clearTimeout(timer);
    if (p.proc.exitCode === null && p.proc.signalCode === null) {
      process.kill(p.pid, "SIGTERM");
      await p.exited;
    }
  }
}

describe("pnpm cluster's own variables", () => {
  after(async () => {
    await stopAll();
  });

  const bad: [string, string][] = [
    ["NODES", "0"],
    ["NODES", "abc"],
    ["CLUSTER_PORT", "abc"],
    ["REDIS_SHARDS", "2"],
    ["REDIS_SHARDS", "17"],
    ["REDIS_ADAPTER", "bogus"],
    ["CLUSTER_PROMETHEUS", "maybe"],
    // The nodes share one SQLite file, which SQLITE_THREAD=main holds for one process.
    ["SQLITE_THREAD", "main"],
  ];
  for (const [name, value] of bad) {
    it(`${name}=${value} stops it with exit 78 and one line naming ${name}, starting nothing`, async () => {
      // CLUSTER_PORT=0: free ports, should a broken check let it start.
      const r = await runLauncher({ CLUSTER_PORT: "0", CLUSTER_PROMETHEUS: "0", [name]: value });
      assert.equal(r.code, 78, r.stderr);
      assert.match(r.stderr, new RegExp(`^cluster: configuration error: ${name} `));
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.doesNotMatch(r.stdout, /starting/, "nothing is started");
    });
  }
});

/** Runs `pnpm cluster <command>` (cli.ts) against CLUSTER_DIR and waits for it to end. */
async function runCommand(dir: string, ...command: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = startProcess(process.execPath, [CLI, ...command], { env: { PATH: process.env.PATH, HOME: process.env.HOME, CLUSTER_DIR: dir } });
  let stdout = "";
  let stderr = "";
  p.proc.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
  p.proc.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([p.exited, new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), 120_000)))]);
  clearTimeout(timer);
  if (result === "timeout") {
    await p.stop("SIGKILL");
    assert.fail(`pnpm cluster ${command.join(" ")} did not end within 120 s:\n${stdout}\n${stderr}`);
  }
  return { code: result.code, stdout, stderr };
}

describe("pnpm cluster's commands", () => {
  after(async () => {
    await stopAll();
  });

  it("help lists the commands and the signals, and starts nothing", async () => {
    for (const word of ["help", "--help", "-h"]) {
      const r = await runCommand(tempDir("cluster-cli-"), word);
      assert.equal(r.code, 0, r.stderr);
      for (const s of ["restart", "add", "remove [node-id]", "scale <n>", "status", "stop", "SIGHUP", "SIGTTIN", "SIGTTOU", "docker compose"]) assert.ok(r.stdout.includes(s), `help names ${s}:\n${r.stdout}`);
      assert.doesNotMatch(r.stdout, /starting \d+ node/);
    }
  });

  it("an unknown command is refused with the usage (exit 2); a command with no cluster running says so (exit 1)", async () => {
    const dir = tempDir("cluster-cli-");
    const bad = await runCommand(dir, "reboot");
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown command "reboot"/);
    assert.match(bad.stderr, /usage: pnpm cluster/);
    for (const cmd of [["status"], ["restart"], ["scale", "2"]]) {
      const r = await runCommand(dir, ...cmd);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /no cluster is running in /);
    }
  });

  it("against a running launcher: status, rolling restart by command and by SIGHUP, scale by command and signals, stop", async () => {
    const dir = tempDir("cluster-cli-");
    const launcher = startProcess(process.execPath, [CLI], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, CLUSTER_DIR: dir, CLUSTER_PORT: "0", CLUSTER_PROMETHEUS: "0", NODES: "2", JWT_SECRET: TEST_SECRET, LOG_LEVEL: "warn" },
    });
    const sockets: Socket[] = [];
    try {
      await waitForOutput(launcher, (o) => o.includes("Ctrl-C stops everything."), 60_000, "the cluster to be up");
      assert.equal(fs.readFileSync(path.join(dir, "launcher.pid"), "utf8").trim(), String(launcher.pid));
      const lb = /load balancer\s+(http:\/\/\S+)/.exec(launcher.output())![1]!;

      const status = async () => {
        const r = await runCommand(dir, "status");
        assert.equal(r.code, 0, r.stderr);
        return r.stdout;
      };
      const pidsOf = (s: string) => [...s.matchAll(/(node-\d+)\s+\S+\s+pid (\d+)\s+ready/g)].map((m) => `${m[1]}:${m[2]}`);
      const first = await status();
      assert.equal(pidsOf(first).length, 2, first);

      // Clients through nginx, so that the restart has something to move.
      for (let i = 0; i < 20; i++) sockets.push(io(lb, { auth: { token: await mintToken(`cli-${i}`) }, withCredentials: true, forceNew: true }));
      await eventually(() => sockets.every((s) => s.connected), 15_000, "the clients to connect");

      const restart = await runCommand(dir, "restart");
      assert.equal(restart.code, 0, restart.stderr);
      assert.match(restart.stdout, /surge node node-3 ready/);
      assert.match(restart.stdout, /\[2\/2\] node-2: draining/);
      assert.match(restart.stdout, /rolling restart: done in/);
      const afterRestart = await status();
      const before = pidsOf(first);
      const now = pidsOf(afterRestart);
      assert.deepEqual(now.map((p) => p.split(":")[0]), ["node-1", "node-2"], afterRestart);
      assert.ok(now.every((p, i) => p !== before[i]), `new processes: ${before} -> ${now}`);
      await eventually(() => sockets.every((s) => s.connected), 15_000, "the clients to be back");
      const conns = [...afterRestart.matchAll(/ready\s+(\d+) connections/g)].map((m) => Number(m[1]));
      assert.ok(Math.max(...conns) <= 1.5 * Math.min(...conns), `spread after the restart: ${conns}`);

      // SIGHUP does the same; the launcher prints it.
      process.kill(launcher.pid, "SIGHUP");
      await waitForOutput(launcher, (o) => /rolling restart \(SIGHUP\): done/.test(o), 60_000, "the SIGHUP rolling restart");

      const scaled = await runCommand(dir, "scale", "3");
      assert.equal(scaled.code, 0, scaled.stderr);
      assert.equal(pidsOf(await status()).length, 3);
      process.kill(launcher.pid, "SIGTTOU");
      await waitForOutput(launcher, (o) => /remove the last node \(SIGTTOU\): done/.test(o), 30_000, "SIGTTOU to remove a node");
      assert.equal(pidsOf(await status()).length, 2);
      process.kill(launcher.pid, "SIGTTIN");
      await waitForOutput(launcher, (o) => /add a node \(SIGTTIN\): done/.test(o), 30_000, "SIGTTIN to add a node");
      assert.equal(pidsOf(await status()).length, 3);
      const removed = await runCommand(dir, "remove", "node-1");
      assert.equal(removed.code, 0, removed.stderr);
      assert.doesNotMatch(await status(), /node-1 /);
      const badScale = await runCommand(dir, "scale", "zero");
      assert.equal(badScale.code, 1);
      assert.match(badScale.stderr, /scale takes a number of nodes/);

      const stop = await runCommand(dir, "stop");
      assert.equal(stop.code, 0, stop.stderr);
      const exited = await Promise.race([launcher.exited, sleep(30_000).then(() => "timeout" as const)]);
      assert.notEqual(exited, "timeout", "the launcher stopped");
      assert.equal(exited === "timeout" ? -1 : exited.code, 0);
      assert.ok(!fs.existsSync(path.join(dir, "control.sock")) && !fs.existsSync(path.join(dir, "launcher.pid")), "it removed its socket and pid file");
    } finally {
      for (const s of sockets) s.close();
      if (launcher.proc.exitCode === null && launcher.proc.signalCode === null) await launcher.stop("SIGTERM", 30_000);
    }
  });
});
