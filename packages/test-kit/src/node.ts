import { NODE_MAIN, TEST_SECRET, chatNodeOptions, freePort, startProcess, tempDir, waitForOutput, type Proc } from "@chat/process-kit";

export interface NodeHandle extends Proc {
  url: string;
  port: number;
  dataDir: string;
  env: Record<string, string>;
}

/**
 * Starts a real chat node (`services/chat-node/src/main.ts`) on a free port with a fresh DATA_DIR
 * unless one is given, and waits until it logs that it listens.
 */
export async function startNode(env: Record<string, string> = {}): Promise<NodeHandle> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const dataDir = env.DATA_DIR ?? tempDir("chat-node-");
  const full: Record<string, string> = {
    HOST: "127.0.0.1",
    JWT_SECRET: TEST_SECRET,
    // POST /dev/token for the tests that sign in as the demo page does; "0" for a node without it.
    DEV_INSECURE_TOKENS: "1",
    LOG_LEVEL: "info",
    TYPING_TIMEOUT_MS: "400",
    SHUTDOWN_TIMEOUT_MS: "5000",
    NODE_ID: `test-${port}`,
    ...env,
    PORT: String(port),
    DATA_DIR: dataDir,
  };
  const childEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...full, NODE_OPTIONS: chatNodeOptions(full.NODE_OPTIONS) };
  const p = startProcess(process.execPath, [NODE_MAIN], { env: childEnv });
  await waitForOutput(p, (o) => o.includes('"msg":"listening"'), 30_000, "the node to listen");
  return Object.assign(p, { url: `http://127.0.0.1:${port}`, port, dataDir, env: full });
}
