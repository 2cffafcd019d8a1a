/**
 * The Prometheus and Grafana configuration as shipped: promtool accepts the compose config and the
 * rules, the rules' unit tests pass, and every PromQL expression of the dashboards and alerts
 * parses with Prometheus's own parser.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { tempDir } from "@chat/test-kit";
import { DASHBOARD_DIR, EXPORTER_METRICS, PROMETHEUS_DIR, alertExpressions, dashboardExpressions, namesIn, promtool } from "./promql.ts";

test("promtool accepts the compose Prometheus config and the rule file it loads", () => {
  // DNS names (chat, nginx-exporter) do not resolve here; check config validates syntax and semantics only.
  const config = promtool("check", "config", path.join(PROMETHEUS_DIR, "prometheus.yml"));
  assert.ok(config.ok, config.out);
  assert.match(config.out, /1 rule files found/);
  const rules = promtool("check", "rules", path.join(PROMETHEUS_DIR, "alerts.yml"));
  assert.ok(rules.ok, rules.out);
});

test("the alert rules' unit tests pass (promtool test rules)", () => {
  const r = promtool("test", "rules", path.join(PROMETHEUS_DIR, "alerts.test.yml"));
  assert.ok(r.ok, r.out);
});

test("the alerts named by the issue exist", () => {
  const names = alertExpressions().map((e) => e.source.replace("alerts.yml ", ""));
  for (const a of ["ChatNodeDown", "ChatSendAckP99High", "ChatServerErrorRate", "ChatEventLoopLag", "ChatRedisDown"]) {
    assert.ok(names.includes(a), `alerts.yml lacks ${a}; it has ${names.join(", ")}`);
  }
});

test("every PromQL expression of the dashboards and the alert rules parses", () => {
  const exprs = [...dashboardExpressions(), ...alertExpressions()];
  assert.ok(exprs.length > 20, `only ${exprs.length} expressions found`);
  for (const e of exprs) assert.ok(!e.expr.includes("$"), `${e.source}: unresolved Grafana variable in ${e.expr}`);

  // Each expression becomes a recording rule: promtool check rules runs the PromQL parser on it.
  const dir = tempDir("obs-promql-");
  try {
    const file = path.join(dir, "expressions.yml");
    const rules = exprs.map((e, i) => ({ record: `shipped_expression_${i}`, expr: e.expr }));
    fs.writeFileSync(file, toYaml({ groups: [{ name: "shipped", rules }] }));
    const r = promtool("check", "rules", file);
    const failing = [...r.out.matchAll(/shipped_expression_(\d+)/g)].map((m) => exprs[Number(m[1])]?.source);
    assert.ok(r.ok, `${r.out}\n${failing.join("\n")}`);
    assert.match(r.out, new RegExp(`SUCCESS: ${exprs.length} rules found`));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a broken expression is caught by the same check", () => {
  const dir = tempDir("obs-promql-");
  try {
    const file = path.join(dir, "broken.yml");
    fs.writeFileSync(file, toYaml({ groups: [{ name: "broken", rules: [{ record: "broken", expr: "sum by (node) (rate(chat_errors_total[5m])" }] }] }));
    assert.equal(promtool("check", "rules", file).ok, false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the name extractor tells metrics from functions, keywords, labels and literals", () => {
  const { metrics, labels } = namesIn(
    'histogram_quantile(0.99, sum by (node, le) (rate(chat_send_ack_seconds_bucket{node=~".*", code!="x{y}"}[1m]))) > 0.25 ' +
      "and on (node) sum by (node) (rate(chat_send_ack_seconds_count[5m] offset 1h)) > 1.5e9 " +
      "or absent(up{job=\"chat\"} == 1) unless sum without (instance) (nodejs_eventloop_lag_p99_seconds) / scalar(process_resident_memory_bytes)",
  );
  assert.deepEqual([...metrics].sort(), [
    "chat_send_ack_seconds_bucket", "chat_send_ack_seconds_count", "nodejs_eventloop_lag_p99_seconds", "process_resident_memory_bytes", "up",
  ]);
  assert.deepEqual([...labels].sort(), ["code", "instance", "job", "le", "node"]);
});

test("the dashboard covers what the issue asks for", () => {
  const all = dashboardExpressions().map((e) => e.expr).join("\n");
  for (const m of [
    "chat_connected_sockets", "chat_messages_stored_total", "chat_fanout_deliveries_total", "chat_send_ack_seconds_bucket",
    "chat_store_commit_seconds_bucket", "chat_store_batch_size", "chat_errors_total", "chat_rate_limited_total",
    "nodejs_eventloop_lag_p99_seconds", "process_resident_memory_bytes", "chat_redis_up", "chat_draining",
  ]) {
    assert.ok(all.includes(m), `no dashboard panel reads ${m}`);
  }
  assert.match(all, /histogram_quantile\(0\.5, .*chat_send_ack_seconds_bucket/);
  assert.match(all, /histogram_quantile\(0\.99, .*chat_send_ack_seconds_bucket/);
  // Issue 6: k6's offered load, streamed by remote write, beside the nodes' own metrics.
  for (const m of ["k6_messages_sent_total", "k6_e2e_latency_p99", "k6_delivery_ratio_rate", "k6_vus"]) {
    assert.ok(all.includes(m), `no dashboard panel reads ${m}`);
  }
});

test("a dashboard variable's All matches only series that carry its label", () => {
  // `node=~".*"` also matches series without a node label (Prometheus's own, the exporters'), so
  // "All" would mix their memory and CPU into the nodes' panels.
  for (const file of fs.readdirSync(DASHBOARD_DIR).filter((f) => f.endsWith(".json"))) {
    const dash = JSON.parse(fs.readFileSync(path.join(DASHBOARD_DIR, file), "utf8")) as { templating?: { list?: { name: string; includeAll?: boolean; allValue?: string }[] } };
    for (const v of dash.templating?.list ?? []) {
      if (!v.includeAll) continue;
      assert.ok(v.allValue !== undefined && v.allValue !== "" && !new RegExp(`^(?:${v.allValue})$`).test(""), `${file} $${v.name}: All must not match an empty label (allValue ${JSON.stringify(v.allValue)})`);
    }
  }
});

test("the compose config discovers every chat replica by DNS, not the service's single address", () => {
  const config = parseYaml(fs.readFileSync(path.join(PROMETHEUS_DIR, "prometheus.yml"), "utf8")) as {
    rule_files: string[];
    scrape_configs: { job_name: string; dns_sd_configs?: { names: string[]; type: string; port: number }[]; static_configs?: unknown[] }[];
  };
  const chat = config.scrape_configs.find((j) => j.job_name === "chat");
  assert.ok(chat, "no chat job");
  assert.equal(chat.static_configs, undefined, "the chat job must not scrape a static address");
  assert.deepEqual(chat.dns_sd_configs?.map((d) => [d.names, d.type, d.port]), [[["chat"], "A", 3001]]);
  assert.deepEqual(config.rule_files, ["alerts.yml"]);
});

test("the dashboards import into any Grafana: a datasource variable and an import input, no fixed datasource uid", () => {
  for (const file of fs.readdirSync(DASHBOARD_DIR).filter((f) => f.endsWith(".json"))) {
    const text = fs.readFileSync(path.join(DASHBOARD_DIR, file), "utf8");
    const dash = JSON.parse(text) as {
      uid?: string;
      title?: string;
      __inputs?: { name: string; type: string; pluginId: string }[];
      templating?: { list?: { name: string; type: string; query?: unknown; current?: { value?: string } }[] };
    };
    assert.ok(dash.uid && dash.title, `${file} needs a uid and a title`);
    const input = dash.__inputs?.find((i) => i.type === "datasource" && i.pluginId === "prometheus");
    assert.ok(input, `${file}: no Prometheus datasource input for Grafana's import`);
    const variable = dash.templating?.list?.find((v) => v.type === "datasource" && v.query === "prometheus");
    assert.ok(variable, `${file}: no datasource variable of type prometheus`);
    assert.equal(variable.current?.value, `\${${input.name}}`, `${file}: the variable defaults to the datasource chosen at import`);
    // Every datasource reference is the variable: no uid of any particular Grafana.
    const refs: unknown[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === "object") {
        for (const [k, x] of Object.entries(v)) {
          if (k === "datasource") refs.push(x);
          else walk(x);
        }
      }
    };
    walk(dash);
    assert.ok(refs.length > 20, `${file} names only ${refs.length} datasources`);
    for (const ref of refs) assert.deepEqual(ref, { type: "prometheus", uid: `\${${variable.name}}` }, `${file}: a datasource that is not the variable: ${JSON.stringify(ref)}`);
    // The provisioned datasource's uid is not written anywhere either (it was, 83 times).
    assert.doesNotMatch(text, /"uid":\s*"prometheus"/);
  }
});

test("the dashboard has nginx and Redis panels over the jobs the compose Prometheus scrapes", () => {
  const config = parseYaml(fs.readFileSync(path.join(PROMETHEUS_DIR, "prometheus.yml"), "utf8")) as { scrape_configs: { job_name: string }[] };
  const jobs = new Set(config.scrape_configs.map((j) => j.job_name));
  const exprs = dashboardExpressions();
  for (const kind of ["nginx", "redis"] as const) {
    const mine = exprs.filter((e) => [...namesIn(e.expr).metrics].some((m) => EXPORTER_METRICS.get(m) === kind));
    assert.ok(mine.length >= 3, `only ${mine.length} ${kind} panels' expressions`);
    for (const e of mine) {
      const job = /job="([^"]+)"/.exec(e.expr)?.[1];
      assert.ok(job && jobs.has(job), `${e.source}: selects job ${job}, which the compose Prometheus does not scrape (${[...jobs].join(", ")})`);
      assert.equal(job, kind, e.source);
    }
  }
  assert.ok(exprs.some((e) => e.expr.includes('chat_connections_refused_total{node=~".+", reason="capacity"}')), "a panel shows connections refused for capacity");
});
