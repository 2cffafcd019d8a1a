/**
 * A full node tells balancers: at MAX_CONNECTIONS sockets /readyz answers 503 naming `capacity`
 * (new handshakes are refused, counted as chat_connections_refused_total{reason="capacity"}), its
 * open sockets keep working and /healthz stays 200; once a socket leaves it is ready again.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { closeAllSockets, connectUser, eventually, startNode, stopAll, type NodeHandle } from "@chat/test-kit";

let node: NodeHandle;

before(async () => {
  node = await startNode({ MAX_CONNECTIONS: "2", RATE_LIMIT_DISABLED: "1" });
});
after(async () => {
  closeAllSockets();
  await stopAll();
});

async function readyz(): Promise<{ status: number; body: { status?: string; failed?: string[] } }> {
  const res = await fetch(`${node.url}/readyz`);
  return { status: res.status, body: (await res.json()) as { status?: string; failed?: string[] } };
}

async function metric(line: RegExp): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const m = line.exec(text);
  assert.ok(m, `metrics match ${line}`);
  return Number(m[1]);
}

test("a node at MAX_CONNECTIONS is not ready, keeps its sockets, and is ready again below it", async () => {
  assert.equal((await readyz()).status, 200);
  assert.equal(await metric(/^chat_max_connections\{[^}]*\} (\d+)$/m), 2);
  const a = await connectUser(node.url, "cap-a");
  assert.equal((await readyz()).status, 200, "one below the cap: ready");
  const b = await connectUser(node.url, "cap-b");

  const full = await eventually(async () => {
    const r = await readyz();
    return r.status === 503 ? r : undefined;
  }, 10_000, "/readyz 503 at the cap");
  assert.deepEqual(full?.body.failed, ["capacity"]);
  assert.equal(full?.body.status, "full");
  assert.equal((await fetch(`${node.url}/healthz`)).status, 200, "still alive: liveness must not restart a full node");

  // A third client is refused, and counted under capacity.
  const refusedBefore = await metric(/^chat_connections_refused_total\{[^}]*reason="capacity"[^}]*\} (\d+)$/m);
  await assert.rejects(connectUser(node.url, "cap-c"), (err: Error & { data?: { code?: string } }) => err.data?.code === "UNAVAILABLE");
  assert.equal(await metric(/^chat_connections_refused_total\{[^}]*reason="capacity"[^}]*\} (\d+)$/m), refusedBefore + 1);
  assert.ok(a.connected && b.connected, "the admitted sockets are kept");

  b.disconnect();
  await eventually(async () => (await readyz()).status === 200, 10_000, "/readyz 200 again below the cap");
  await connectUser(node.url, "cap-d");
  await eventually(async () => (await readyz()).status === 503, 10_000, "full again");
});
