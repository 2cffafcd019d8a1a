/** @chat/process-kit: the process helpers every suite, the launcher and the bench start things with. */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import { freePort, isAlive, startProcess, stopAll, tempDir, waitForOutput } from "../src/index.ts";

describe("process-kit", () => {
  after(() => stopAll());

  it("startProcess captures output; stop() sends the signal, waits, and resolves to the exit code", async () => {
    const p = startProcess(process.execPath, ["-e", "console.log('ready'); process.on('SIGTERM', () => { console.error('bye'); process.exit(3); }); setInterval(() => {}, 1000);"]);
    await waitForOutput(p, (o) => o.includes("ready"), 10_000, "ready");
    assert.equal(await p.stop("SIGTERM"), 3);
    assert.match(p.output(), /bye/);
    assert.equal(isAlive(p.pid), false, "the process is gone");
  });

  it("stop() kills with SIGKILL after the grace period (exit code null), and stopAll() stops what is left by PID", async () => {
    const stubborn = startProcess(process.execPath, ["-e", "process.on('SIGTERM', () => {}); console.log('up'); setInterval(() => {}, 1000);"]);
    await waitForOutput(stubborn, (o) => o.includes("up"), 10_000, "up");
    assert.equal(await stubborn.stop("SIGTERM", 300), null);
    const left = startProcess(process.execPath, ["-e", "setInterval(() => {}, 1000);"]);
    await stopAll();
    assert.equal(isAlive(left.pid), false, "stopAll stopped it");
  });

  it("waitForOutput rejects with the output when the process exits first", async () => {
    const p = startProcess(process.execPath, ["-e", "console.log('partial'); process.exit(1);"]);
    await assert.rejects(waitForOutput(p, (o) => o.includes("never"), 10_000, "never"), /exited before never:\n[\s\S]*partial/);
  });

  it("freePort gives a port nothing listens on; tempDir gives a new empty directory", async () => {
    const port = await freePort();
    await new Promise<void>((resolve, reject) => {
      const s = net.createServer().once("error", reject).listen(port, "127.0.0.1", () => s.close(() => resolve()));
    });
    const a = tempDir();
    const b = tempDir();
    assert.notEqual(a, b);
    assert.deepEqual(fs.readdirSync(a), []);
  });
});
