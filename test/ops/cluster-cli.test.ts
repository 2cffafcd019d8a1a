/**
 * `pnpm cluster` checks its own variables as a node checks its configuration: a malformed one stops
 * the launcher before it starts anything, with one line naming it and exit 78 (EX_CONFIG), not a
 * stack trace; and a switch takes the node's switch words, not anything at all.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { REPO_ROOT, startProcess, stopAll, tempDir } from "@chat/test-kit";

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
