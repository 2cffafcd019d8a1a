/**
 * The development token route through the load balancer (issue 20): the local cluster forwards
 * `/dev/` only when its nodes run the insecure demo (no JWT_SECRET given); with a secret, nginx
 * answers it 404 itself and the nodes never see it. REST keeps working either way.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { stopAll } from "@chat/test-kit";
import { startCluster, type Cluster } from "../../infra/cluster/cluster.ts";

const started: Cluster[] = [];
after(async () => {
  for (const c of started) await c.stop();
  await stopAll();
});

async function cluster(env: Record<string, string>): Promise<Cluster> {
  const c = await startCluster({ nodes: 1, env: { LOG_LEVEL: "warn", ...env }, withPrometheus: false });
  started.push(c);
  return c;
}

const devToken = (url: string) =>
  fetch(`${url}/dev/token`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ userId: "mallory" }) });

describe("the dev token route through nginx", () => {
  test("with a JWT_SECRET: nginx answers /dev/ 404 itself", async () => {
    const c = await cluster({ JWT_SECRET: "a-real-secret-0123456789abcdef" });
    const res = await devToken(c.url);
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: { code: "NOT_FOUND", message: "no such route" } });
    const direct = await devToken(c.nodes[0]!.url);
    assert.equal(direct.status, 404, "the node has no dev route either");
    assert.equal((await fetch(`${c.url}/conversations`)).status, 401, "REST is still forwarded");
  });

  test("in the demo (no JWT_SECRET): /dev/token is forwarded and mints a token", async () => {
    const c = await cluster({});
    const res = await devToken(c.url);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { token?: string; userId?: string };
    assert.equal(body.userId, "mallory");
    const list = await fetch(`${c.url}/conversations`, { headers: { authorization: `Bearer ${body.token}` } });
    assert.equal(list.status, 200);
  });
});
