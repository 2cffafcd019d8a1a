/**
 * The PromQL the project ships (Grafana dashboards, Prometheus alert rules), collected as plain
 * expressions, and the metric and label names each one reads. Shared by the observability tests.
 */
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { parse as parseYaml } from "yaml";
import { REPO_ROOT, eventually } from "@chat/test-kit";

export const PROMETHEUS_DIR = path.join(REPO_ROOT, "infra/prometheus");
export const DASHBOARD_DIR = path.join(REPO_ROOT, "infra/grafana/dashboards");
export const GRAFANA_DATASOURCES = path.join(REPO_ROOT, "infra/grafana/provisioning/datasources");

export interface ShippedExpr {
  /** Where it comes from, for failure messages: `alerts.yml ChatNodeDown`, `chat-cluster.json "Memory" A`. */
  source: string;
  /** The expression with Grafana's variables replaced by values Prometheus accepts. */
  expr: string;
}

/**
 * Grafana's variables become what Grafana would send: an interval for `$__rate_interval`, the
 * "All" regex for `$node`. Anything left with a `$` is reported by the test, not guessed.
 */
export function substituteGrafanaVariables(expr: string): string {
  return expr
    .replaceAll("$__rate_interval", "1m")
    .replaceAll("$__interval", "15s")
    .replaceAll("$__range", "5m")
    .replace(/\$\{?node(?::regex)?\}?/g, ".+");
}

/**
 * The metrics of the exporters the compose Prometheus scrapes (jobs `nginx` and `redis`), which no
 * chat node exports. No exporter image runs here, so their names are listed from the exporters'
 * own sources: nginx-prometheus-exporter's stub_status collector (`nginx_up`,
 * `nginx_connections_*`, `nginx_http_requests_total`) and redis_exporter's INFO mapping
 * (namespace `redis`: `connected_clients` becomes `redis_connected_clients`, `used_memory`
 * `redis_memory_used_bytes`, `total_commands_processed` `redis_commands_processed_total`, ...).
 */
export const EXPORTER_METRICS: ReadonlyMap<string, "nginx" | "redis"> = new Map([
  ...(["nginx_up", "nginx_connections_accepted", "nginx_connections_active", "nginx_connections_handled", "nginx_connections_reading",
    "nginx_connections_waiting", "nginx_connections_writing", "nginx_http_requests_total"] as const).map((m) => [m, "nginx"] as const),
  ...(["redis_up", "redis_connected_clients", "redis_blocked_clients", "redis_memory_used_bytes", "redis_memory_max_bytes", "redis_commands_processed_total",
    "redis_connections_received_total", "redis_rejected_connections_total", "redis_net_input_bytes_total", "redis_net_output_bytes_total",
    "redis_pubsub_channels", "redis_pubsub_patterns", "redis_evicted_keys_total"] as const).map((m) => [m, "redis"] as const),
]);

/** Every alerting and recording rule expression of infra/prometheus/alerts.yml. */
export function alertExpressions(): ShippedExpr[] {
  const doc = parseYaml(fs.readFileSync(path.join(PROMETHEUS_DIR, "alerts.yml"), "utf8")) as {
    groups: { name: string; rules: { alert?: string; record?: string; expr: string }[] }[];
  };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ source: `alerts.yml ${r.alert ?? r.record}`, expr: String(r.expr).trim() })));
}

/** Every panel target and query variable of every dashboard JSON under infra/grafana/dashboards. */
export function dashboardExpressions(): ShippedExpr[] {
  const out: ShippedExpr[] = [];
  for (const file of fs.readdirSync(DASHBOARD_DIR).filter((f) => f.endsWith(".json"))) {
    const dash = JSON.parse(fs.readFileSync(path.join(DASHBOARD_DIR, file), "utf8")) as Record<string, unknown>;
    const walk = (v: unknown, where: string): void => {
      if (Array.isArray(v)) v.forEach((x) => walk(x, where));
      else if (v && typeof v === "object") {
        const o = v as Record<string, unknown>;
        const here = typeof o.title === "string" ? `"${o.title}"` : where;
        if (typeof o.expr === "string") out.push({ source: `${file} ${here} ${String(o.refId ?? "")}`.trim(), expr: substituteGrafanaVariables(o.expr) });
        for (const [k, x] of Object.entries(o)) if (k !== "expr") walk(x, here);
      }
    };
    walk(dash.panels, file);
    const vars = ((dash.templating as { list?: unknown[] } | undefined)?.list ?? []) as { name: string; type?: string; query?: unknown }[];
    for (const v of vars) {
      // A datasource variable's query is a plugin id, not PromQL.
      if (v.type === "datasource") continue;
      const q = typeof v.query === "string" ? v.query : (v.query as { query?: string } | undefined)?.query;
      if (!q) continue;
      // label_values(metric, label) is Grafana's, not PromQL: check its selector as an expression.
      const m = /^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(q.trim());
      out.push({ source: `${file} variable $${v.name}`, expr: m ? `${m[1]} and on (${m[2]}) ${m[1]}` : q });
    }
  }
  return out;
}

/**
 * The series k6's Prometheus remote-write output makes of the metrics the k6 scripts declare, as
 * it names them (xk6-output-prometheus-remote): a Counter `k6_<name>_total`, a Rate
 * `k6_<name>_rate`, a Gauge `k6_<name>`, a Trend one gauge per stat of compose's
 * `K6_PROMETHEUS_RW_TREND_STATS` (`p(99)` becomes `k6_<name>_p99`, in seconds for a time trend);
 * and k6's own `vus`, `vus_max`, `iterations` and `dropped_iterations`.
 */
export function k6RemoteWriteSeries(): Set<string> {
  const compose = parseYaml(fs.readFileSync(path.join(REPO_ROOT, "docker-compose.yml"), "utf8")) as {
    services: Record<string, { environment?: Record<string, string> }>;
  };
  const stats = String(compose.services.k6?.environment?.K6_PROMETHEUS_RW_TREND_STATS ?? "")
    .split(",")
    .filter(Boolean)
    .map((st) => st.replace(/[()]/g, ""));
  const out = new Set(["k6_vus", "k6_vus_max", "k6_iterations_total", "k6_dropped_iterations_total"]);
  const files = fs.readdirSync(path.join(REPO_ROOT, "load-tests/k6"), { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".js"));
  for (const f of files) {
    const text = fs.readFileSync(path.join(REPO_ROOT, "load-tests/k6", f), "utf8");
    for (const [, type, name] of text.matchAll(/new (Counter|Rate|Gauge|Trend)\(\s*"([a-zA-Z0-9_]+)"/g)) {
      if (type === "Counter") out.add(`k6_${name}_total`);
      else if (type === "Rate") out.add(`k6_${name}_rate`);
      else if (type === "Gauge") out.add(`k6_${name}`);
      else for (const st of stats) out.add(`k6_${name}_${st}`);
    }
  }
  return out;
}

const KEYWORDS = new Set(["and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "atan2", "inf", "nan"]);

/**
 * The metric names and label names an expression reads. A small tokenizer, not a parser: the
 * expressions are first proven valid by Prometheus's own parser (promtool), and this only needs
 * to tell metric selectors apart from functions, keywords, literals, ranges and label lists.
 */
export function namesIn(expr: string): { metrics: Set<string>; labels: Set<string> } {
  const metrics = new Set<string>();
  const labels = new Set<string>();
  let s = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  s = s.replace(/\{([^}]*)\}/g, (_m, body: string) => {
    for (const lm of body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) labels.add(lm[1]!);
    return " ";
  });
  s = s.replace(/\[[^\]]*\]/g, " ");
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_m, _kw: string, list: string) => {
    for (const l of list.split(",").map((x) => x.trim()).filter(Boolean)) labels.add(l);
    return " ";
  });
  s = s.replace(/\boffset\s+-?[0-9a-z]+/g, " ");
  s = s.replace(/(?<![a-zA-Z0-9_:])(?:0x[0-9a-f]+|\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+(?:e[+-]?\d+)?)/gi, " ");
  for (const m of s.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const name = m[0];
    const after = s.slice(m.index + name.length);
    if (/^\s*\(/.test(after)) continue; // a function or an aggregation
    if (KEYWORDS.has(name.toLowerCase())) continue;
    metrics.add(name);
  }
  labels.delete("__name__");
  return { metrics, labels };
}

/** Runs promtool with `args`; `ok` is its exit status 0, `out` stdout and stderr together. */
export function promtool(...args: string[]): { ok: boolean; out: string } {
  const r = spawnSync("promtool", args, { encoding: "utf8", timeout: 60_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error) : ""}` };
}

/** One sample line of a Prometheus text exposition. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  /** `name{labels}` as exposed: the identity of the series. */
  key: string;
  value: number;
}

/** Parses the text exposition format (comments skipped, label values unescaped). */
export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const lm of (m[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[lm[1]!] = lm[2]!.replace(/\\(.)/g, (_x, c: string) => (c === "n" ? "\n" : c));
    }
    out.push({ name: m[1]!, labels, key: `${m[1]}${m[2] ?? ""}`, value: Number(m[4]) });
  }
  return out;
}

/** The sum of the samples of `name` whose labels include `labels`. */
export function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

/** GETs a node's /metrics and parses it. */
export async function scrape(nodeUrl: string): Promise<{ text: string; samples: Sample[] }> {
  const res = await fetch(`${nodeUrl}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  const text = await res.text();
  return { text, samples: parseExposition(text) };
}

/**
 * Scrapes once the node has handled every disconnect (chat_connected_sockets back to 0): the
 * client's disconnect() returns before the server runs its handlers.
 */
export async function settledScrape(nodeUrl: string, timeoutMs = 15_000): Promise<Sample[]> {
  const samples = await eventually(async () => {
    const s = (await scrape(nodeUrl)).samples;
    return valueOf(s, "chat_connected_sockets") === 0 ? s : null;
  }, timeoutMs, "every socket to be closed on the node");
  return samples as Sample[];
}
