/**
 * The README's ways of starting things stop on SIGTERM sent to the process the user started, not
 * only on Ctrl-C (which signals the whole process group). pnpm forwards SIGTERM to its script's
 * process, but a script `sh -c "… && node x"` and npm's `.bin/node` shim do not pass it on: the
 * node was orphaned, still serving, and never drained. The scripts `exec` the real Node binary.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { freePort, isAlive, startProcess, stopAll, tempDir, waitForOutput } from "@chat/test-kit";

/** Every descendant of `pid` (from /proc), with its command line. */
function descendants(pid: number): { pid: number; cmd: string }[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const out: { pid: number; cmd: string }[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      let cmd = "";
      try {
        cmd = fs.readFileSync(`/proc/${c}/cmdline`, "utf8").replaceAll("\0", " ");
      } catch {
        continue;
      }
      out.push({ pid: c, cmd });
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** Waits until none of `pids` is alive; returns those still alive at the deadline. */
async function gone(pids: number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return pids.filter(isAlive);
}

describe("SIGTERM to what the user started", () => {
  const started: number[] = [];
  after(async () => {
    for (const pid of started) if (isAlive(pid)) process.kill(pid, "SIGKILL");
    await stopAll();
  });

  it("./scripts/start.sh: the node drains and exits, nothing left running", async () => {
    const port = await freePort();
    const p = startProcess("bash", ["scripts/start.sh"], {
      env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", DATA_DIR: tempDir("start-sh-"), LOG_LEVEL: "info" },
    });
    await waitForOutput(p, (out) => out.includes('"msg":"listening"'), 60_000, "the node listening");
    const tree = descendants(p.pid);
    started.push(...tree.map((t) => t.pid));
    // start.sh execs Node: its own process is the node.
    const own = fs.readFileSync(`/proc/${p.pid}/cmdline`, "utf8").replaceAll("\0", " ");
    assert.match(own, /services\/chat-node\/src\/main\.ts/, `start.sh's process is the node: ${own}, children ${JSON.stringify(tree)}`);
    assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);

    p.proc.kill("SIGTERM");
    const left = await gone([p.pid, ...tree.map((t) => t.pid)], 20_000);
    assert.deepEqual(left, [], `still running after SIGTERM: ${JSON.stringify(tree.filter((t) => left.includes(t.pid)))}`);
    assert.match(p.output(), /"msg":"drained"/, "the node drained, as on a SIGTERM of its own");
    await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), "nothing listens any more");
  });

  it("pnpm cluster: the launcher stops the nodes, nginx, Redis and Prometheus", async () => {
    // As from a user's shell: without the workspace's node_modules/.bin on PATH, where npm's node shim
    // would run pnpm itself as a child that no signal reaches.
    const PATH = (process.env.PATH ?? "").split(":").filter((d) => !d.includes("node_modules")).join(":");
    const p = startProcess("pnpm", ["cluster"], { env: { ...process.env, PATH, NODES: "2", CLUSTER_PORT: "0", CLUSTER_DIR: tempDir("cluster-sigterm-") } });
    await waitForOutput(p, (out) => out.includes("chat cluster up") && out.includes("Ctrl-C stops everything"), 90_000, "the cluster up");
    const tree = descendants(p.pid);
    started.push(...tree.map((t) => t.pid));
    const kinds = ["infra/cluster/cli.ts", "services/chat-node/src/main.ts", "redis-server", "nginx", "prometheus"];
    for (const k of kinds) assert.ok(tree.some((t) => t.cmd.includes(k)), `${k} runs under pnpm cluster: ${tree.map((t) => t.cmd).join(" | ")}`);

    p.proc.kill("SIGTERM");
    const left = await gone([p.pid, ...tree.map((t) => t.pid)], 30_000);
    assert.deepEqual(left, [], `still running after SIGTERM: ${tree.filter((t) => left.includes(t.pid)).map((t) => t.cmd).join(" | ")}`);
  });
});
