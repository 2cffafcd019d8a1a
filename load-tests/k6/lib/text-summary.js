/**
 * k6's end-of-test text summary, written for this project. k6 documents getting it back inside a
 * custom handleSummary with `textSummary(data, { indent, enableColors })` from the remote jslib
 * module k6-summary; no remote module can be fetched at run time here, so this file provides a
 * function of the same name and signature over the same `data` (the legacy summary object k6
 * hands to handleSummary). It prints what k6's own summary prints: every threshold with its
 * verdict and the value it was judged on, the checks, and every metric (k6's built-ins: http_req_*,
 * ws_*, iterations, vus, data_*; and the scripts' own), grouped as k6 groups them, with each trend's
 * `summaryTrendStats` in order and time trends in human units.
 */

const GROUPS = [
  ["HTTP", (n) => n.indexOf("http_") === 0],
  ["WEBSOCKET", (n) => n.indexOf("ws_") === 0],
  ["EXECUTION", (n) => ["iteration_duration", "iterations", "dropped_iterations", "vus", "vus_max", "group_duration"].indexOf(n) >= 0],
  ["NETWORK", (n) => n === "data_sent" || n === "data_received"],
];

function parentOf(name) {
  const i = name.indexOf("{");
  return i < 0 ? name : name.slice(0, i);
}

function groupOf(name) {
  const p = parentOf(name);
  for (const g of GROUPS) if (g[1](p)) return g[0];
  return "CUSTOM";
}

function round(x, digits) {
  const f = Math.pow(10, digits);
  return String(Math.round(x * f) / f);
}

/** Milliseconds in k6's style (`812µs`, `12.31ms`, `1.5s`, `2m3s`), or in `unit` when the run fixed one. */
export function formatTime(ms, unit) {
  if (typeof ms !== "number" || isNaN(ms)) return String(ms);
  if (unit === "s") return round(ms / 1000, 3) + "s";
  if (unit === "ms") return round(ms, 2) + "ms";
  if (unit === "us") return round(ms * 1000, 0) + "µs";
  const a = Math.abs(ms);
  if (a === 0) return "0s";
  if (a < 1) return round(ms * 1000, 2) + "µs";
  if (a < 1000) return round(ms, 2) + "ms";
  if (a < 60000) return round(ms / 1000, 2) + "s";
  const m = Math.floor(ms / 60000);
  return m + "m" + round((ms - m * 60000) / 1000, 1) + "s";
}

/** Bytes as k6 prints data (`31 kB`, `1.3 MB`): decimal units. */
export function formatData(bytes) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return round(v, i === 0 ? 0 : 1) + " " + units[i];
}

function formatValue(metric, stat, v, unit) {
  if (v === undefined) return "(not in summaryTrendStats)";
  if (metric.type === "rate" && stat === "rate") return round(v * 100, 2) + "%";
  if (stat === "count" || stat === "passes" || stat === "fails") return round(v, 0);
  if (metric.contains === "time" && stat !== "rate") return formatTime(v, unit);
  if (metric.contains === "data" && stat !== "rate") return formatData(v);
  return round(v, 4);
}

function valuesLine(metric, trendStats, unit) {
  const v = metric.values || {};
  switch (metric.type) {
    case "counter": {
      if (metric.contains === "data") return formatData(v.count) + "  " + formatData(v.rate) + "/s";
      return formatValue(metric, "count", v.count, unit) + "  " + round(v.rate, 4) + "/s";
    }
    case "gauge":
      return formatValue(metric, "value", v.value, unit) + "  min=" + formatValue(metric, "min", v.min, unit) + " max=" + formatValue(metric, "max", v.max, unit);
    case "rate":
      return formatValue(metric, "rate", v.rate, unit) + "  " + round(v.passes, 0) + " out of " + round(v.passes + v.fails, 0);
    case "trend": {
      const stats = trendStats && trendStats.length ? trendStats : Object.keys(v);
      return stats.map((s) => s + "=" + (s === "count" ? round(v[s], 0) : formatValue(metric, s, v[s], unit))).join(" ");
    }
    default:
      return JSON.stringify(v);
  }
}

/** The value a threshold expression is judged on (`p(99)`, `rate`, `count`, ...). */
function thresholdStat(expr) {
  const m = /^\s*([a-z]+(?:\([0-9.]+\))?)\s*(?:<=|>=|===|==|!=|<|>)/.exec(expr);
  return m ? m[1] : undefined;
}

function pad(label, width) {
  let s = label;
  if (s.length < width) s += ".".repeat(width - s.length);
  return s + ":";
}

/**
 * The text summary of `data` (handleSummary's argument). opts: { indent (default " "),
 * enableColors (default false) }.
 */
export function textSummary(data, opts) {
  const o = opts || {};
  const indent = o.indent === undefined ? " " : o.indent;
  const color = !!o.enableColors;
  const green = (s) => (color ? "\u001b[32m" + s + "\u001b[0m" : s);
  const red = (s) => (color ? "\u001b[31m" + s + "\u001b[0m" : s);
  const ok = green("✓");
  const ko = red("✗");
  const options = data.options || {};
  const trendStats = options.summaryTrendStats;
  const unit = options.summaryTimeUnit || "";
  const metrics = data.metrics || {};
  const names = Object.keys(metrics).sort();
  const out = [];
  const line = (depth, text) => out.push(indent + "  ".repeat(depth) + text);

  const withThresholds = names.filter((n) => metrics[n].thresholds && Object.keys(metrics[n].thresholds).length > 0);
  if (withThresholds.length > 0) {
    out.push("");
    line(0, "█ THRESHOLDS");
    for (const n of withThresholds) {
      const m = metrics[n];
      out.push("");
      line(1, n);
      for (const expr of Object.keys(m.thresholds)) {
        const stat = thresholdStat(expr);
        const value = stat === undefined ? "" : " " + stat + "=" + formatValue(m, stat, (m.values || {})[stat], unit);
        line(1, (m.thresholds[expr].ok ? ok : ko) + " '" + expr + "'" + value);
      }
    }
  }

  out.push("");
  out.push("");
  line(0, "█ TOTAL RESULTS");
  const checks = [];
  const collect = (g) => {
    for (const c of g.checks || []) checks.push(c);
    for (const sub of g.groups || []) collect(sub);
  };
  if (data.root_group) collect(data.root_group);
  if (checks.length > 0) {
    out.push("");
    for (const c of checks) {
      const total = c.passes + c.fails;
      if (c.fails === 0) line(1, ok + " " + c.name);
      else {
        line(1, ko + " " + c.name);
        line(2, "↳  " + round((100 * c.passes) / (total || 1), 2) + "% — " + ok + " " + c.passes + " / " + ko + " " + c.fails);
      }
    }
  }
  const width = Math.max(30, ...names.map((n) => (n.indexOf("{") >= 0 ? n.length - parentOf(n).length + 2 : n.length) + 3));
  const sections = ["CHECKS", "CUSTOM"].concat(GROUPS.map((g) => g[0]));
  for (const section of sections) {
    const inSection = names.filter((n) => (section === "CHECKS" ? parentOf(n) === "checks" : parentOf(n) !== "checks" && groupOf(n) === section));
    const parents = inSection.filter((n) => n.indexOf("{") < 0);
    const orphans = inSection.filter((n) => n.indexOf("{") >= 0 && parents.indexOf(parentOf(n)) < 0);
    if (parents.length + orphans.length === 0) continue;
    out.push("");
    line(1, section);
    for (const n of parents.concat(orphans)) {
      const mark = metrics[n].thresholds ? (Object.keys(metrics[n].thresholds).every((t) => metrics[n].thresholds[t].ok) ? ok + " " : ko + " ") : "  ";
      line(1, mark + pad(n, width) + " " + valuesLine(metrics[n], trendStats, unit));
      if (n.indexOf("{") >= 0) continue;
      for (const sub of inSection.filter((x) => x.indexOf("{") >= 0 && parentOf(x) === n)) {
        const sm = metrics[sub].thresholds ? (Object.keys(metrics[sub].thresholds).every((t) => metrics[sub].thresholds[t].ok) ? ok + " " : ko + " ") : "  ";
        const label = "{ " + sub.slice(n.length + 1, -1).replace(/,/g, ", ") + " }";
        line(2, sm + pad(label, width - 2) + " " + valuesLine(metrics[sub], trendStats, unit));
      }
    }
  }
  if (data.state && typeof data.state.testRunDurationMs === "number") {
    out.push("");
    line(0, "running for " + formatTime(data.state.testRunDurationMs, ""));
  }
  return out.join("\n") + "\n";
}
