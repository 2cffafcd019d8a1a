import { freePort, startProcess, tempDir, waitForOutput, type Proc } from "@chat/process-kit";

export interface RedisHandle extends Proc {
  url: string;
  port: number;
}

/** Starts Debian's redis-server on a free loopback port, no persistence. */
export async function startRedis(port?: number): Promise<RedisHandle> {
  const p = port ?? (await freePort());
  const proc = startProcess("redis-server", [
    "--port", String(p), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tempDir("chat-redis-"),
  ]);
  await waitForOutput(proc, (o) => o.includes("Ready to accept connections"), 15_000, "redis-server to start");
  return Object.assign(proc, { url: `redis://127.0.0.1:${p}`, port: p });
}
