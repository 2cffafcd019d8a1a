/**
 * End to end with the real Prometheus: the local cluster launcher starts Redis, two nodes, nginx
 * and a Prometheus scraping every node; K messages go through nginx; Prometheus's HTTP API must
 * then show every node up and the cluster-wide sum of chat_messages_stored_total equal to K, and
 * the alert rules it loads (infra/prometheus/alerts.yml) must evaluate against the real series.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { TEST_SECRET, api, closeAllSockets, connectUser, emitAck, eventually, mintToken, stopAll, waitForEvent } from "@chat/test-kit";
import { startCluster } from "../../infra/cluster/cluster.ts";

const K = 24;

type Cluster = Awaited<ReturnType<typeof startCluster>>;
let cluster: Cluster | undefined;

interface PromVector {
  status: string;
  data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

async function query(expr: string): Promise<PromVector["data"]["result"]> {
  const res = await fetch(`${cluster!.prometheusUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as PromVector;
  assert.equal(body.status, "success", JSON.stringify(body));
  return body.data.result;
}

before(async () => {
  cluster = await startCluster({ nodes: 2, withPrometheus: true, env: { JWT_SECRET: TEST_SECRET, RATE_LIMIT_DISABLED: "1" } });
  assert.ok(cluster.prometheusUrl, "the launcher started no Prometheus (is the Debian prometheus package installed?)");
});

after(async () => {
  closeAllSockets();
  await cluster?.stop();
  await stopAll();
});

test("Prometheus scrapes every node of the local cluster", async () => {
  const ports = cluster!.nodes.map((n) => new URL(n.url).port);
  assert.equal(ports.length, 2);
  await eventually(async () => {
    const up = await query("up");
    return ports.every((p) => up.some((s) => s.metric.instance?.endsWith(`:${p}`) && s.value[1] === "1"));
  }, 30_000, `up == 1 for every node (${ports.join(", ")})`);
});

test("the cluster-wide sum of chat_messages_stored_total equals the messages sent through nginx", async () => {
  const tag = randomUUID().slice(0, 8);
  const alice = `obs-e2e-alice-${tag}`;
  const bob = `obs-e2e-bob-${tag}`;
  const conv = await api(cluster!.url, await mintToken(alice)).post<{ id: string }>("/conversations", { members: [alice, bob] });
  assert.equal(conv.status, 201, JSON.stringify(conv.body));
  const a = await connectUser(cluster!.url, alice);
  const b = await connectUser(cluster!.url, bob);
  for (const s of [a, b]) assert.equal((await emitAck<{ ok: boolean }>(s, "joinConversation", { conversationId: conv.body.id })).ok, true);

  for (let i = 0; i < K; i++) {
    const sender = i % 2 === 0 ? a : b;
    const other = i % 2 === 0 ? b : a;
    const delivered = waitForEvent<{ clientMessageId?: string }>(other, "newMessage", { filter: (m) => m.clientMessageId === `${tag}-${i}` });
    const ack = await emitAck<{ ok: boolean }>(sender, "sendMessage", { conversationId: conv.body.id, message: `e2e ${i}`, clientMessageId: `${tag}-${i}` });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    await delivered;
  }
  // A repeat is answered with the original and must not be counted again.
  await emitAck(a, "sendMessage", { conversationId: conv.body.id, message: "e2e 0", clientMessageId: `${tag}-0` });

  let last = "";
  await eventually(async () => {
    const r = await query("sum(chat_messages_stored_total)");
    last = r[0]?.value[1] ?? "(no series)";
    return last === String(K);
  }, 30_000, `sum(chat_messages_stored_total) == ${K}`).catch((e: Error) => assert.fail(`${e.message}; Prometheus last said ${last}`));

  // Every message reached both sockets, wherever they are connected: 2K deliveries cluster-wide.
  await eventually(async () => (await query("sum(chat_fanout_deliveries_total)"))[0]?.value[1] === String(2 * K), 30_000, `fan-out == ${2 * K}`);
  // Both nodes report, each with its own node label.
  const perNode = await query("count by (node) (chat_messages_stored_total)");
  assert.equal(perNode.length, 2, JSON.stringify(perNode));
});

test("the launcher's Prometheus evaluates every alert rule of infra/prometheus/alerts.yml without error", async () => {
  interface Rule { name: string; health: string; lastError?: string; state?: string; annotations?: Record<string, string> }
  let rules: Rule[] = [];
  const fetchRules = async () => {
    const res = (await (await fetch(`${cluster!.prometheusUrl}/api/v1/rules`)).json()) as { data: { groups: { rules: Rule[] }[] } };
    rules = res.data.groups.flatMap((g) => g.rules);
  };
  // A healthy cluster: once evaluated after the first scrapes, no availability alert is even pending.
  const availabilityActive = () => rules.filter((r) => r.state && r.state !== "inactive" && /Down|NoNodeUp/.test(r.name)).map((r) => `${r.name}: ${r.state}`);
  await eventually(async () => {
    await fetchRules();
    return rules.length > 0 && rules.every((r) => r.health !== "unknown") && availabilityActive().length === 0;
  }, 30_000, "every rule evaluated, no availability alert active").catch((e: Error) =>
    assert.fail(`${e.message}: ${JSON.stringify(rules.map((r) => [r.name, r.health, r.state, r.lastError]))}`),
  );
  const names = rules.map((r) => r.name);
  for (const a of ["ChatNodeDown", "ChatSendAckP99High", "ChatServerErrorRate", "ChatEventLoopLag", "ChatConnectionsRefusedCapacity", "ChatNodeNearCapacity"]) {
    assert.ok(names.includes(a), `${a} not loaded: ${names.join(", ")}`);
  }
  // The runbook links reach the alerts as Prometheus serves them (and sends them to an Alertmanager).
  const unlinked = rules.filter((r) => !r.annotations?.runbook_url?.startsWith("docs/runbooks.md#")).map((r) => r.name);
  assert.deepEqual(unlinked, [], "alerts without a runbook_url as loaded");
  const broken = rules.filter((r) => r.health !== "ok").map((r) => `${r.name}: ${r.health} ${r.lastError ?? ""}`);
  assert.deepEqual(broken, [], "rules failing to evaluate");
});
