/**
 * The dashboards and alerts name only metrics and labels a real node exports: a node with Redis
 * (so chat_redis_up exists) gets a little of every kind of traffic, then its /metrics is the
 * reference every shipped expression is checked against.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { closeAllSockets, startNode, startRedis, stopAll, type NodeHandle } from "@chat/test-kit";
import { EXPORTER_METRICS, alertExpressions, dashboardExpressions, k6RemoteWriteSeries, namesIn, settledScrape, valueOf, type Sample } from "./promql.ts";
import { driveTraffic } from "./traffic.ts";

/** Series Prometheus itself makes: `up` per target, ALERTS from the rules. */
const PROMETHEUS_SERIES = new Set(["up", "ALERTS", "ALERTS_FOR_STATE"]);
/** Target labels Prometheus adds to every scraped series. */
const TARGET_LABELS = new Set(["job", "instance"]);

let node: NodeHandle;
let samples: Sample[];

before(async () => {
  const redis = await startRedis();
  node = await startNode({ REDIS_URL: redis.url, NODE_ID: "obs-names" });
  await driveTraffic(node.url, { users: 4, conversations: 3 });
  // Disconnects are handled after the client's; scrape once the node has seen them all.
  samples = await settledScrape(node.url);
});

after(async () => {
  closeAllSockets();
  await stopAll();
});

test("every metric an expression reads is exported by the node (or, for k6_, recorded by a k6 script; nginx_ and redis_, by their exporters)", () => {
  const exported = new Set(samples.map((s) => s.name));
  const k6 = k6RemoteWriteSeries();
  const missing: string[] = [];
  for (const e of [...dashboardExpressions(), ...alertExpressions()]) {
    for (const m of namesIn(e.expr).metrics) {
      const known = m.startsWith("k6_")
        ? k6.has(m)
        : m.startsWith("nginx_") || m.startsWith("redis_")
          ? EXPORTER_METRICS.has(m)
          : exported.has(m) || PROMETHEUS_SERIES.has(m);
      if (!known) missing.push(`${e.source}: ${m}`);
    }
  }
  assert.deepEqual(missing, [], `expressions name metrics the node does not export:\n${missing.join("\n")}`);
});

test("every label an expression groups or matches by exists on the node's series", () => {
  const exportedLabels = new Set(samples.flatMap((s) => Object.keys(s.labels)));
  const missing: string[] = [];
  for (const e of [...dashboardExpressions(), ...alertExpressions()]) {
    for (const l of namesIn(e.expr).labels) {
      if (!exportedLabels.has(l) && !TARGET_LABELS.has(l)) missing.push(`${e.source}: ${l}`);
    }
  }
  assert.deepEqual(missing, [], `expressions use labels no series carries:\n${missing.join("\n")}`);
});

test("the node exports the contract's metrics with the node label", () => {
  const exported = new Set(samples.map((s) => s.name));
  for (const m of [
    "chat_connected_sockets", "chat_connections_opened_total", "chat_connections_closed_total", "chat_events_received_total",
    "chat_errors_total", "chat_messages_stored_total", "chat_fanout_deliveries_total", "chat_rate_limited_total",
    "chat_typing_broadcasts_total", "chat_presence_changes_total", "chat_store_commit_seconds_bucket", "chat_store_batch_size_bucket",
    "chat_send_ack_seconds_bucket", "chat_broker_publish_errors_total", "chat_redis_up", "chat_draining",
    "nodejs_eventloop_lag_p99_seconds", "process_resident_memory_bytes",
  ]) {
    assert.ok(exported.has(m), `/metrics lacks ${m}`);
  }
  const unlabelled = samples.filter((s) => s.labels.node !== "obs-names").map((s) => s.key);
  assert.deepEqual(unlabelled, [], "every series carries node=NODE_ID");
});

test("the traffic moved every chat_ metric it exercised", () => {
  const v = (name: string, labels: Record<string, string> = {}) => valueOf(samples, name, labels);
  const checks: [string, number, string][] = [
    ["chat_connections_opened_total", v("chat_connections_opened_total"), ">= 4 sockets connected"],
    ["chat_connections_refused_total{reason=unauthorized}", v("chat_connections_refused_total", { reason: "unauthorized" }), "a wrongly signed token was refused"],
    ["chat_connections_closed_total", v("chat_connections_closed_total"), "every socket disconnected"],
    ["chat_events_received_total{event=sendMessage}", v("chat_events_received_total", { event: "sendMessage" }), "sends were received"],
    ["chat_events_received_total{event=unknown}", v("chat_events_received_total", { event: "unknown" }), "made-up event names were received"],
    ["chat_errors_total{code=INVALID_PAYLOAD}", v("chat_errors_total", { code: "INVALID_PAYLOAD" }), "malformed payloads were refused"],
    ["chat_errors_total{code=NOT_FOUND}", v("chat_errors_total", { code: "NOT_FOUND" }), "an unknown conversation was refused"],
    ["chat_errors_total{code=FORBIDDEN}", v("chat_errors_total", { code: "FORBIDDEN" }), "a non-member's join was refused"],
    ["chat_messages_stored_total", v("chat_messages_stored_total"), "messages were stored"],
    ["chat_messages_duplicate_total", v("chat_messages_duplicate_total"), "a clientMessageId was repeated"],
    ["chat_fanout_deliveries_total", v("chat_fanout_deliveries_total"), "newMessage reached joined sockets"],
    ["chat_broadcast_direct_writes_total", v("chat_broadcast_direct_writes_total"), "broadcasts reached WebSocket members"],
    ["chat_typing_broadcasts_total{state=start}", v("chat_typing_broadcasts_total", { state: "start" }), "typing started"],
    ["chat_typing_broadcasts_total{state=stop}", v("chat_typing_broadcasts_total", { state: "stop" }), "typing stopped"],
    ["chat_presence_changes_total{state=online}", v("chat_presence_changes_total", { state: "online" }), "users joined rooms"],
    ["chat_presence_changes_total{state=offline}", v("chat_presence_changes_total", { state: "offline" }), "users left rooms"],
    ["chat_store_commit_seconds_count", v("chat_store_commit_seconds_count"), "batches were committed"],
    ["chat_store_batch_size_count", v("chat_store_batch_size_count"), "batch sizes were observed"],
    ["chat_send_ack_seconds_count", v("chat_send_ack_seconds_count"), "sends were acknowledged"],
    ["chat_redis_up", v("chat_redis_up"), "Redis is connected"],
  ];
  const flat = checks.filter(([, value]) => !(value > 0)).map(([name, , why]) => `${name} is 0 although ${why}`);
  assert.deepEqual(flat, [], `metrics defined but not updated by the node:\n${flat.join("\n")}`);
  assert.equal(v("chat_draining"), 0);
  assert.equal(v("chat_store_up"), 1);
});
