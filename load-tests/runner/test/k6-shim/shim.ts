/**
 * A small stand-in for k6, for the tests only: k6 (a Go binary) cannot be installed here, and the
 * scenarios in load-tests/k6 should still be run, not only parsed. Each VU is its own V8 context
 * (vm.createContext) with its own instance of every module, as each k6 VU has its own runtime;
 * the k6 modules the scripts import are played by Node (`ws` for k6/websockets, fetch in a worker
 * behind Atomics.wait for the blocking k6/http, node:crypto for k6/crypto), the executors the
 * scripts use are scheduled as k6 documents them, thresholds are parsed, validated and judged as
 * k6's metrics/thresholds*.go do (sinks, `abortOnFail` every 2 s ignoring empty sinks, the end
 * without), and handleSummary gets k6's legacy summary object.
 *
 * What it does NOT cover, so a pass here is not a pass in k6:
 * - k6's JavaScript engine (sobek): V8 accepts syntax and built-ins sobek may lack.
 * - Timing: VUs share one Node thread (k6 runs them in parallel), arrival-rate executors are
 *   scheduled by a 1 ms tick; gracefulStop, gracefulRampDown and the interruption of iterations
 *   at maxDuration are not modelled (a run past its end is abandoned, and reported).
 * - Only per-vu-iterations, constant-arrival-rate and ramping-arrival-rate run; other executors
 *   are refused.
 * - k6/http: no cookie jars, redirects as fetch follows them, timings only as http_req_duration;
 *   k6/websockets: handshake params (jar, tags, headers) are ignored; ws_* metrics are counted,
 *   not timed as k6 does; no other built-in metric than those named in BUILTINS is ever sampled.
 * - `open()` reproduces k6's refusals (directory, missing file) without its file cache.
 * - No outputs (remote write, JSON lines), no `--summary-mode`, no k6 CLI flags.
 */
import { createHash, createHmac, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import vm from "node:vm";
import { Worker } from "node:worker_threads";
import WebSocket from "ws";
import type { WireRequest, WireResponse } from "./http-worker.ts";

export type MetricType = "counter" | "gauge" | "rate" | "trend";
export type Contains = "default" | "time" | "data";
type Tags = Record<string, string>;

export interface MetricDef {
  name: string;
  type: MetricType;
  contains: Contains;
  builtin: boolean;
}

/** k6's built-in metrics (metrics/builtin.go), which a threshold may name without defining them. */
export const BUILTINS: MetricDef[] = (
  [
    ["vus", "gauge", "default"],
    ["vus_max", "gauge", "default"],
    ["iterations", "counter", "default"],
    ["iteration_duration", "trend", "time"],
    ["dropped_iterations", "counter", "default"],
    ["checks", "rate", "default"],
    ["group_duration", "trend", "time"],
    ["http_reqs", "counter", "default"],
    ["http_req_failed", "rate", "default"],
    ["http_req_duration", "trend", "time"],
    ["http_req_blocked", "trend", "time"],
    ["http_req_connecting", "trend", "time"],
    ["http_req_tls_handshaking", "trend", "time"],
    ["http_req_sending", "trend", "time"],
    ["http_req_waiting", "trend", "time"],
    ["http_req_receiving", "trend", "time"],
    ["ws_sessions", "counter", "default"],
    ["ws_msgs_sent", "counter", "default"],
    ["ws_msgs_received", "counter", "default"],
    ["ws_ping", "trend", "time"],
    ["ws_session_duration", "trend", "time"],
    ["ws_connecting", "trend", "time"],
    ["data_sent", "counter", "data"],
    ["data_received", "counter", "data"],
  ] as const
).map(([name, type, contains]) => ({ name, type, contains, builtin: true }));

/** k6's default `summaryTrendStats`. */
const DEFAULT_TREND_STATS = ["avg", "min", "med", "max", "p(90)", "p(95)"];

export interface ParsedThreshold {
  source: string;
  method: string;
  pct?: number;
  op: string;
  value: number;
  abortOnFail: boolean;
  delayAbortEvalMs: number;
}

const OPS = ["<=", "<", ">=", ">", "===", "==", "!="];
const METHODS_BY_TYPE: Record<MetricType, string[]> = {
  counter: ["count", "rate"],
  gauge: ["value"],
  rate: ["rate"],
  trend: ["avg", "min", "max", "med", "p"],
};

/** k6's duration strings ("1m30s", "250ms", "2s") or numbers (ms), in ms. */
export function parseDuration(v: unknown): number {
  if (typeof v === "number") return v;
  if (typeof v !== "string" || v === "") throw new Error(`invalid duration ${JSON.stringify(v)}`);
  let ms = 0;
  let rest = v;
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };
  while (rest.length > 0) {
    const m = /^(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/.exec(rest);
    if (!m) throw new Error(`invalid duration ${JSON.stringify(v)}`);
    ms += Number(m[1]) * unit[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return ms;
}

/** A threshold as k6 parses it (metrics/thresholds_parser.go): `method op value`, operators scanned in k6's order. */
export function parseThreshold(t: unknown): ParsedThreshold {
  const cfg = typeof t === "string" ? { threshold: t } : (t as { threshold: string; abortOnFail?: boolean; delayAbortEval?: string });
  const source = cfg.threshold;
  if (typeof source !== "string") throw new Error(`threshold ${JSON.stringify(t)} has no expression`);
  let op: string | undefined;
  let left = "";
  let right = "";
  for (const o of OPS) {
    const i = source.indexOf(o);
    if (i >= 0 && source.slice(i + o.length) !== "") {
      op = o;
      left = source.slice(0, i).trim();
      right = source.slice(i + o.length).trim();
      break;
    }
  }
  if (!op) throw new Error(`malformed threshold expression "${source}"`);
  let method = left;
  let pct: number | undefined;
  const p = /^p\(([^)]*)\)$/.exec(left);
  if (p) {
    method = "p";
    pct = Number(p[1]);
    if (!isFinite(pct) || pct < 0 || pct > 100) throw new Error(`malformed percentile in "${source}"`);
  } else if (!["value", "count", "rate", "avg", "min", "med", "max"].includes(left)) {
    throw new Error(`failed parsing method from expression "${source}"`);
  }
  const value = Number(right);
  if (right === "" || !isFinite(value)) throw new Error(`threshold "${source}": right hand side is not a number`);
  return { source, method, pct, op, value, abortOnFail: !!cfg.abortOnFail, delayAbortEvalMs: cfg.delayAbortEval ? parseDuration(cfg.delayAbortEval) : 0 };
}

/** `name{tag:value,tag2:value2}` → name and tags. */
export function parseMetricKey(key: string): { name: string; tags: Tags } {
  const i = key.indexOf("{");
  if (i < 0) return { name: key, tags: {} };
  if (!key.endsWith("}")) throw new Error(`malformed sub-metric "${key}"`);
  const tags: Tags = {};
  for (const part of key.slice(i + 1, -1).split(",")) {
    const c = part.indexOf(":");
    if (c <= 0) throw new Error(`malformed tag "${part}" in "${key}"`);
    tags[part.slice(0, c).trim()] = part.slice(c + 1).trim();
  }
  return { name: key.slice(0, i), tags };
}

/** A `p(x)` of sorted values, with k6's linear interpolation (metrics/sink.go TrendSink.P). */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  if (sorted.length === 1) return sorted[0]!;
  const i = p * (sorted.length - 1);
  const j = sorted[Math.floor(i)]!;
  const k = sorted[Math.ceil(i)]!;
  return j + (k - j) * (i - Math.floor(i));
}

interface Sample {
  v: number;
  tags: Tags;
}

export class MetricsEngine {
  readonly defs = new Map<string, MetricDef>();
  private readonly samples = new Map<string, Sample[]>();
  constructor() {
    for (const b of BUILTINS) this.defs.set(b.name, b);
  }
  define(name: string, type: MetricType, isTime: boolean): void {
    if (!/^[\p{L}\p{N}._!?/&#()<>%-]{1,128}$/u.test(name)) throw new Error(`invalid metric name "${name}"`);
    const prev = this.defs.get(name);
    const contains: Contains = isTime ? "time" : "default";
    if (prev && (prev.type !== type || prev.contains !== contains)) throw new Error(`metric "${name}" already exists as a ${prev.type} (${prev.contains}), not a ${type} (${contains})`);
    if (!prev) this.defs.set(name, { name, type, contains, builtin: false });
  }
  add(name: string, value: number, tags: Tags): void {
    let list = this.samples.get(name);
    if (!list) this.samples.set(name, (list = []));
    list.push({ v: value, tags });
  }
  /** Samples of `key` (a metric or `metric{tag:value}`). */
  select(key: string): number[] {
    const { name, tags } = parseMetricKey(key);
    const list = this.samples.get(name) ?? [];
    const want = Object.entries(tags);
    return (want.length === 0 ? list : list.filter((s) => want.every(([k, v]) => s.tags[k] === v))).map((s) => s.v);
  }
  observed(name: string): boolean {
    return (this.samples.get(name)?.length ?? 0) > 0;
  }
  /** What k6's sink gives a threshold or the summary for `key` over `durationMs`. */
  values(key: string, durationMs: number, trendStats: string[], extraPercentiles: number[] = []): Record<string, number> {
    const def = this.defs.get(parseMetricKey(key).name);
    if (!def) throw new Error(`no metric ${key}`);
    const vs = this.select(key);
    switch (def.type) {
      case "counter": {
        const count = vs.reduce((a, b) => a + b, 0);
        return durationMs > 0 ? { count, rate: count / (durationMs / 1000) } : { count };
      }
      case "gauge":
        return vs.length ? { value: vs.at(-1)!, min: Math.min(...vs), max: Math.max(...vs) } : { value: 0, min: 0, max: 0 };
      case "rate": {
        const trues = vs.filter((v) => v !== 0).length;
        const out: Record<string, number> = { passes: trues, fails: vs.length - trues };
        if (vs.length > 0) out.rate = trues / vs.length;
        return out;
      }
      case "trend": {
        const sorted = [...vs].sort((a, b) => a - b);
        const avg = sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : 0;
        const all: Record<string, number> = { min: sorted[0] ?? 0, max: sorted.at(-1) ?? 0, avg, med: percentile(sorted, 0.5), count: sorted.length };
        for (const p of extraPercentiles) all[`p(${p})`] = percentile(sorted, p / 100);
        for (const s of trendStats) {
          const m = /^p\(([\d.]+)\)$/.exec(s);
          if (m) all[s] = percentile(sorted, Number(m[1]) / 100);
        }
        return all;
      }
    }
  }
  sampleCount(key: string): number {
    return this.select(key).length;
  }
}

/** Judges one threshold on a sink's values, as Threshold.runNoTaint: a missing value passes. */
export function judge(t: ParsedThreshold, values: Record<string, number>): boolean {
  const key = t.method === "p" ? `p(${t.pct})` : t.method;
  const lhs = values[key];
  if (lhs === undefined) return true;
  switch (t.op) {
    case ">":
      return lhs > t.value;
    case ">=":
      return lhs >= t.value;
    case "<":
      return lhs < t.value;
    case "<=":
      return lhs <= t.value;
    case "==":
    case "===":
      return lhs === t.value;
    default:
      return lhs !== t.value;
  }
}

/** k6 refuses to start (exit 104) on a threshold over an unknown metric or with a method its type has not. */
export function validateThresholds(thresholds: Record<string, unknown[]>, defs: Map<string, MetricDef>): string[] {
  const errors: string[] = [];
  for (const [key, list] of Object.entries(thresholds)) {
    let name: string;
    try {
      name = parseMetricKey(key).name;
    } catch (e) {
      errors.push(String(e));
      continue;
    }
    const def = defs.get(name);
    if (!def) {
      errors.push(`invalid threshold defined on ${key}; reason: no metric name "${name}" found`);
      continue;
    }
    for (const t of list) {
      try {
        const p = parseThreshold(t);
        if (!METHODS_BY_TYPE[def.type].includes(p.method)) errors.push(`"${p.source}" on ${key}: unsupported aggregation method ${p.method} on a ${def.type}`);
      } catch (e) {
        errors.push(`${key}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
  return errors;
}

// ---------------------------------------------------------------------------------------------
// The run: VUs, modules, executors.

export interface ShimResult {
  exitCode: number;
  options: Record<string, unknown>;
  definedMetrics: MetricDef[];
  configErrors: string[];
  thresholds: { metric: string; source: string; ok: boolean; abortOnFail: boolean; samples: number }[];
  metrics: Record<string, { type: MetricType; contains: Contains; samples: number; values: Record<string, number> }>;
  scenarios: Record<string, { iterations: number; dropped: number; abandoned: number }>;
  abortedBy?: string;
  logs: string[];
  errors: string[];
  summaryStdout?: string;
  summaryFiles: string[];
  summaryWriteErrors: string[];
}

interface ScenarioRun {
  name: string;
  cfg: Record<string, unknown>;
  startTime: number;
  iterations: number;
  dropped: number;
  abandoned: number;
  tags: Tags;
}

interface Vu {
  id: number;
  ctx: vm.Context;
  ns: Record<string, unknown>;
  inInit: boolean;
  scenario?: ScenarioRun;
  iterInScenario: number;
  iterInInstance: number;
  iterInTest: number;
  busy: boolean;
}

class Abort extends Error {}

export interface RunOptions {
  env: Record<string, string>;
  /** Only evaluate the init context of VU 0: options and metric definitions. */
  optionsOnly?: boolean;
  /** Where handleSummary's relative paths land (k6: the working directory). */
  cwd?: string;
  /** Abandon the run this long after every scenario's own end (ms). */
  overrunMs?: number;
  echo?: boolean;
}

export async function runScript(scriptPath: string, ro: RunOptions): Promise<ShimResult> {
  const script = path.resolve(scriptPath);
  const engine = new MetricsEngine();
  const logs: string[] = [];
  const errors: string[] = [];
  const cwd = ro.cwd ?? process.cwd();
  const result: ShimResult = {
    exitCode: 0,
    options: {},
    definedMetrics: [],
    configErrors: [],
    thresholds: [],
    metrics: {},
    scenarios: {},
    logs,
    errors,
    summaryFiles: [],
    summaryWriteErrors: [],
  };
  let testStart = Date.now();
  let aborted: string | undefined;
  let vuSeq = 0;
  const vus: Vu[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let http: Worker | undefined;
  const checks: Record<string, { passes: number; fails: number }> = {};

  const scriptError = (where: string, e: unknown) => {
    const text = `${where}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`;
    errors.push(text);
    if (ro.echo) console.error(text);
  };
  const onRejection = (e: unknown) => scriptError("Uncaught (in promise)", e);
  process.on("unhandledRejection", onRejection);

  const guard =
    <A extends unknown[]>(where: string, fn: (...a: A) => unknown) =>
    (...a: A) => {
      try {
        const r = fn(...a);
        if (r && typeof (r as Promise<unknown>).then === "function") (r as Promise<unknown>).then(undefined, (e) => scriptError(where, e));
      } catch (e) {
        if (e instanceof Abort) return;
        scriptError(where, e);
      }
    };

  const tagsOf = (vu: Vu, extra?: unknown): Tags => {
    const t: Tags = {};
    if (vu.scenario) {
      Object.assign(t, vu.scenario.tags);
      t.scenario = vu.scenario.name;
    }
    if (extra && typeof extra === "object") for (const [k, v] of Object.entries(extra)) t[k] = String(v);
    return t;
  };

  const syncHttp = (reqs: WireRequest[]): WireResponse[] => {
    http ??= new Worker(new URL("./http-worker.ts", import.meta.url));
    http.unref();
    const sab = new SharedArrayBuffer(8 + 16 * 1024 * 1024);
    const flag = new Int32Array(sab, 0, 2);
    http.postMessage({ sab, reqs });
    const longest = Math.max(...reqs.map((r) => r.timeoutMs)) + 5000;
    if (Atomics.wait(flag, 0, 0, longest) === "timed-out") throw new Error("shim http worker did not answer");
    const text = new TextDecoder().decode(new Uint8Array(sab, 8, flag[1]).slice());
    const parsed = JSON.parse(text) as WireResponse[] | { tooLarge: number };
    if (!Array.isArray(parsed)) throw new Error(`shim: responses of ${parsed.tooLarge} bytes do not fit`);
    return parsed;
  };

  function k6Modules(vu: Vu): Record<string, Record<string, unknown>> {
    const add = (name: string, value: unknown, tags?: unknown) => {
      const def = engine.defs.get(name)!;
      let v: number;
      if (typeof value === "boolean") v = value ? 1 : 0;
      else v = Number(value);
      if (!isFinite(v)) throw new Error(`${name}: the value ${String(value)} is not a number`);
      if (def.type === "rate") v = v !== 0 ? 1 : 0;
      engine.add(name, v, tagsOf(vu, tags));
      return true;
    };
    const metricClass = (type: MetricType) =>
      class {
        name: string;
        constructor(name: string, isTime?: boolean) {
          if (!vu.inInit) throw new Error("metrics must be declared in the init context");
          engine.define(name, type, !!isTime && type === "trend");
          this.name = name;
        }
        add(value: unknown, tags?: unknown) {
          return add(this.name, value, tags);
        }
      };
    const metrics = { Counter: metricClass("counter"), Gauge: metricClass("gauge"), Rate: metricClass("rate"), Trend: metricClass("trend") };

    const k6 = {
      check(val: unknown, sets: Record<string, (v: unknown) => unknown>, tags?: unknown) {
        let all = true;
        for (const [name, fn] of Object.entries(sets)) {
          const ok = !!(typeof fn === "function" ? fn(val) : fn);
          add("checks", ok, Object.assign({ check: name }, tags as object));
          const c = (checks[name] ??= { passes: 0, fails: 0 });
          if (ok) c.passes++;
          else c.fails++;
          all &&= ok;
        }
        return all;
      },
      sleep(seconds: number) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Math.max(0, seconds * 1000));
      },
      group(_name: string, fn: () => unknown) {
        return fn();
      },
      fail(msg?: string) {
        throw new Error(msg ?? "fail()");
      },
      randomSeed() {},
    };

    class Response {
      status: number;
      body: string;
      headers: Record<string, string>;
      error: string;
      timings: { duration: number };
      url: string;
      constructor(url: string, w: WireResponse) {
        this.url = url;
        this.status = w.status;
        this.body = w.body;
        this.headers = w.headers;
        this.error = w.error ?? "";
        this.timings = { duration: w.durationMs };
      }
      json(selector?: string) {
        const v = JSON.parse(this.body) as unknown;
        if (!selector) return v;
        let cur: unknown = v;
        for (const part of selector.split(".")) cur = cur && typeof cur === "object" ? (cur as Record<string, unknown>)[part] : undefined;
        return cur;
      }
    }
    type Params = { headers?: Record<string, string>; tags?: Record<string, string>; timeout?: string | number };
    const toWire = (method: string, url: string, body: unknown, params?: Params): WireRequest => ({
      method: method.toUpperCase(),
      url,
      body: body === undefined || body === null ? null : typeof body === "string" ? body : JSON.stringify(body),
      headers: params?.headers,
      timeoutMs: params?.timeout !== undefined ? parseDuration(params.timeout) : 60_000,
    });
    const record = (w: WireRequest, r: WireResponse, params?: Params) => {
      const expected = r.status >= 200 && r.status < 400;
      const tags = Object.assign({ method: w.method, status: String(r.status), name: w.url, expected_response: String(expected) }, params?.tags);
      add("http_reqs", 1, tags);
      add("http_req_duration", r.durationMs, tags);
      add("http_req_failed", !expected, tags);
    };
    const request = (method: string, url: string, body?: unknown, params?: Params) => {
      if (vu.inInit) throw new Error("making requests in the init context is not supported");
      const w = toWire(method, url, body, params);
      const [r] = syncHttp([w]);
      record(w, r!, params);
      return new Response(url, r!);
    };
    const http = {
      request,
      get: (url: string, params?: Params) => request("GET", url, null, params),
      post: (url: string, body?: unknown, params?: Params) => request("POST", url, body, params),
      put: (url: string, body?: unknown, params?: Params) => request("PUT", url, body, params),
      del: (url: string, body?: unknown, params?: Params) => request("DELETE", url, body, params),
      batch(reqs: unknown[]) {
        const norm = reqs.map((q) => {
          if (typeof q === "string") return { method: "GET", url: q, body: null, params: undefined };
          if (Array.isArray(q)) return { method: q[0] as string, url: q[1] as string, body: q[2], params: q[3] as Params | undefined };
          const o = q as { method?: string; url: string; body?: unknown; params?: Params };
          return { method: o.method ?? "GET", url: o.url, body: o.body, params: o.params };
        });
        const wires = norm.map((q) => toWire(q.method, q.url, q.body, q.params));
        const res = syncHttp(wires);
        return res.map((r, i) => {
          record(wires[i]!, r, norm[i]!.params);
          return new Response(norm[i]!.url, r);
        });
      },
      CookieJar: class {},
      expectedStatuses() {
        return undefined;
      },
      setResponseCallback() {},
    };

    class K6WebSocket {
      private readonly ws: WebSocket;
      private readonly openedAt = Date.now();
      constructor(url: string) {
        this.ws = new WebSocket(url, { perMessageDeflate: false });
        // An EventEmitter `error` without a listener would throw; the script's listeners see it anyway.
        this.ws.on("error", () => {});
        this.ws.on("open", () => {
          add("ws_sessions", 1);
          add("ws_connecting", Date.now() - this.openedAt);
        });
        this.ws.on("message", () => add("ws_msgs_received", 1));
      }
      get readyState() {
        return this.ws.readyState;
      }
      get url() {
        return this.ws.url;
      }
      addEventListener(type: string, fn: (e: unknown) => void) {
        const cb = guard(`WebSocket ${type} listener`, fn);
        if (type === "message") this.ws.addEventListener("message", (e) => cb({ type, data: e.data }));
        else if (type === "close") this.ws.addEventListener("close", (e) => cb({ type, code: e.code, reason: e.reason }));
        else if (type === "error") this.ws.addEventListener("error", (e) => cb({ type, error: e.message }));
        else if (type === "open") this.ws.addEventListener("open", () => cb({ type }));
        else this.ws.on(type, () => cb({ type }));
      }
      send(data: string) {
        if (this.ws.readyState !== WebSocket.OPEN) throw new Error("InvalidStateError");
        add("ws_msgs_sent", 1);
        this.ws.send(data);
      }
      close(code?: number, reason?: string) {
        if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
        else if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code ?? 1000, reason);
      }
    }

    const timer = (repeat: boolean) => (fn: () => void, ms?: number) => {
      const t = (repeat ? setInterval : setTimeout)(guard(repeat ? "setInterval callback" : "setTimeout callback", fn), ms ?? 0);
      timers.add(t);
      return t;
    };
    const clear = (t: NodeJS.Timeout) => {
      clearTimeout(t);
      timers.delete(t);
    };
    const timersMod = { setTimeout: timer(false), setInterval: timer(true), clearTimeout: clear, clearInterval: clear };

    const enc = (out: string, buf: Buffer) => {
      if (out === "hex") return buf.toString("hex");
      if (out === "base64") return buf.toString("base64");
      if (out === "base64url") return buf.toString("base64url") + "=".repeat((4 - (buf.toString("base64url").length % 4)) % 4);
      if (out === "base64rawurl") return buf.toString("base64url");
      if (out === "binary") return [...buf];
      throw new Error(`unsupported output encoding ${out}`);
    };
    const crypto = {
      hmac: (alg: string, key: string, data: string, out: string) => enc(out, createHmac(alg, key).update(data).digest()),
      sha256: (data: string, out: string) => enc(out, createHash("sha256").update(data).digest()),
      randomBytes: (n: number) => randomBytes(n).buffer,
      createHMAC: () => {
        throw new Error("shim: createHMAC not played");
      },
      createHash: () => {
        throw new Error("shim: createHash not played");
      },
    };
    const encoding = {
      b64encode(input: string | ArrayBuffer, e?: string) {
        const buf = typeof input === "string" ? Buffer.from(input, "utf8") : Buffer.from(input);
        const mode = e ?? "std";
        if (mode === "std") return buf.toString("base64");
        if (mode === "rawstd") return buf.toString("base64").replace(/=+$/, "");
        if (mode === "url") return enc("base64url", buf);
        if (mode === "rawurl") return buf.toString("base64url");
        throw new Error(`unsupported encoding ${mode}`);
      },
      b64decode(input: string, e?: string, format?: string) {
        const buf = Buffer.from(input, e === "url" || e === "rawurl" ? "base64url" : "base64");
        return format === "s" ? buf.toString("utf8") : buf.buffer;
      },
    };

    const execution = {
      vu: {
        get idInTest() {
          return vu.id;
        },
        get idInInstance() {
          return vu.id;
        },
        get iterationInScenario() {
          return vu.iterInScenario;
        },
        get iterationInInstance() {
          return vu.iterInInstance;
        },
        tags: {},
        metrics: { tags: {}, metadata: {} },
      },
      scenario: {
        get name() {
          return vu.scenario?.name;
        },
        get executor() {
          return vu.scenario?.cfg.executor;
        },
        get startTime() {
          return vu.scenario?.startTime;
        },
        get iterationInTest() {
          return vu.iterInTest;
        },
        get iterationInInstance() {
          return vu.iterInTest;
        },
        get progress() {
          return 0;
        },
      },
      instance: {
        get currentTestRunDuration() {
          return Date.now() - testStart;
        },
        get vusActive() {
          return vus.filter((v) => v.busy).length;
        },
        get vusInitialized() {
          return vus.length;
        },
        iterationsCompleted: 0,
        iterationsInterrupted: 0,
      },
      test: {
        abort(reason?: string) {
          aborted ??= `test.abort(${reason ?? ""})`;
          throw new Abort(reason);
        },
        get options() {
          return result.options;
        },
      },
    };

    const withDefault = (o: Record<string, unknown>) => Object.assign({ default: o }, o);
    return {
      k6: withDefault(k6),
      "k6/http": withDefault(http),
      "k6/metrics": withDefault(metrics),
      "k6/websockets": withDefault({ WebSocket: K6WebSocket, Blob: class {} }),
      "k6/experimental/websockets": withDefault({ WebSocket: K6WebSocket, Blob: class {} }),
      "k6/timers": withDefault(timersMod),
      "k6/crypto": withDefault(crypto),
      "k6/encoding": withDefault(encoding),
      "k6/execution": { default: execution },
    };
  }

  /** `open()` with k6's refusals (internal/js/initcontext.go): outside init, directories, missing files. */
  const openFor = (vu: Vu) => (filename: string, mode?: string) => {
    if (!vu.inInit) throw new Error('the "open" function is only available in the init stage');
    if (!filename) throw new Error("open() can't be used with an empty filename");
    const p = path.resolve(path.dirname(script), filename.replace(/^file:\/\//, ""));
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(p, { throwIfNoEntry: false });
    } catch (e) {
      throw new Error(`open ${p}: ${(e as NodeJS.ErrnoException).code === "ENOTDIR" ? "not a directory" : String(e)}`, { cause: e });
    }
    if (!st) throw new Error(`open ${p}: no such file or directory`);
    if (st.isDirectory()) throw new Error(`open() can't be used with directories, path: "${p}"`);
    const data = fs.readFileSync(p);
    return mode === "b" ? data.buffer : data.toString("utf8");
  };

  async function newVu(id: number, env: Record<string, string>): Promise<Vu> {
    const vu: Vu = { id, ctx: undefined as unknown as vm.Context, ns: {}, inInit: true, iterInScenario: 0, iterInInstance: 0, iterInTest: 0, busy: false };
    const lines = (level: string) =>
      (...a: unknown[]) => {
        const text = `${level} VU ${id}: ${a.map((x) => (typeof x === "string" ? x : x instanceof Error ? x.message : JSON.stringify(x))).join(" ")}`;
        logs.push(text);
        if (ro.echo) console.error(text);
      };
    const console_ = { log: lines("info"), info: lines("info"), debug: lines("debug"), warn: lines("warn"), error: lines("error") };
    vu.ctx = vm.createContext({ __ENV: Object.assign({}, env), __VU: id, __ITER: 0, console: console_, open: openFor(vu) });
    const mods = k6Modules(vu);
    const cache = new Map<string, vm.Module>();
    const load = (file: string): vm.Module => {
      let m = cache.get(file);
      if (!m) {
        m = new vm.SourceTextModule(fs.readFileSync(file, "utf8"), { identifier: file, context: vu.ctx });
        cache.set(file, m);
      }
      return m;
    };
    const linker = (specifier: string, ref: vm.Module): vm.Module => {
      const exports = mods[specifier];
      if (exports) {
        const key = `k6:${specifier}`;
        let m = cache.get(key);
        if (!m) {
          m = new vm.SyntheticModule(
            Object.keys(exports),
            function (this: vm.SyntheticModule) {
              for (const [k, v] of Object.entries(exports)) this.setExport(k, v);
            },
            { identifier: key, context: vu.ctx },
          );
          cache.set(key, m);
        }
        return m;
      }
      if (!specifier.startsWith(".")) throw new Error(`${ref.identifier}: the shim has no module "${specifier}"`);
      return load(path.resolve(path.dirname(ref.identifier), specifier));
    };
    const root = load(script);
    await root.link(linker);
    await root.evaluate();
    vu.ns = root.namespace as Record<string, unknown>;
    vu.inInit = false;
    return vu;
  }

  const stopAll = () => {
    for (const t of timers) clearTimeout(t);
    timers.clear();
  };

  // Init of VU 0: options and metric definitions, checked as k6 checks them before it starts.
  let vu0: Vu;
  try {
    vu0 = await newVu(0, ro.env);
  } catch (e) {
    scriptError("init", e);
    result.exitCode = 107;
    process.off("unhandledRejection", onRejection);
    return result;
  }
  const options = JSON.parse(JSON.stringify(vu0.ns.options ?? {})) as Record<string, unknown>;
  result.options = options;
  result.definedMetrics = [...engine.defs.values()].filter((d) => !d.builtin);
  const thresholds = (options.thresholds ?? {}) as Record<string, unknown[]>;
  result.configErrors = validateThresholds(thresholds, engine.defs);
  const scenarios = (options.scenarios ?? {}) as Record<string, Record<string, unknown>>;
  for (const [name, sc] of Object.entries(scenarios)) {
    const fn = (sc.exec as string | undefined) ?? "default";
    if (typeof vu0.ns[fn] !== "function") result.configErrors.push(`scenario ${name}: exec function "${fn}" is not exported`);
    if (!["per-vu-iterations", "constant-arrival-rate", "ramping-arrival-rate"].includes(String(sc.executor))) result.configErrors.push(`scenario ${name}: the shim does not run ${String(sc.executor)}`);
  }
  if (result.configErrors.length > 0) result.exitCode = 104;
  if (ro.optionsOnly || result.exitCode !== 0) {
    stopAll();
    process.off("unhandledRejection", onRejection);
    return result;
  }

  const parsed = Object.entries(thresholds).map(([key, list]) => ({ key, list: list.map(parseThreshold) }));
  const trendStats = (options.summaryTrendStats as string[] | undefined) ?? DEFAULT_TREND_STATS;
  const percentilesOf = (key: string) => parsed.find((p) => p.key === key)?.list.filter((t) => t.method === "p").map((t) => t.pct!) ?? [];

  // setup() in VU 0; its result reaches the VUs as JSON, as in k6.
  testStart = Date.now();
  let setupData: unknown;
  try {
    const setupFn = vu0.ns.setup as ((...a: unknown[]) => unknown) | undefined;
    const raw = setupFn ? await setupFn() : undefined;
    setupData = raw === undefined ? undefined : JSON.parse(JSON.stringify(raw));
  } catch (e) {
    scriptError("setup", e);
    result.exitCode = 107;
  }

  const runs: ScenarioRun[] = [];
  if (result.exitCode === 0) {
    const abortWatch = setInterval(() => {
      const elapsed = Date.now() - testStart;
      for (const { key, list } of parsed) {
        if (engine.sampleCount(key) === 0) continue;
        const values = engine.values(key, elapsed, trendStats, percentilesOf(key));
        for (const t of list) if (t.abortOnFail && !judge(t, values) && elapsed > t.delayAbortEvalMs) aborted ??= `threshold ${key} '${t.source}'`;
      }
    }, 2000);
    const t0 = Date.now();
    const ends: Promise<void>[] = [];
    for (const [name, sc] of Object.entries(scenarios)) {
      const run: ScenarioRun = { name, cfg: sc, startTime: 0, iterations: 0, dropped: 0, abandoned: 0, tags: (sc.tags as Tags | undefined) ?? {} };
      runs.push(run);
      ends.push(runScenario(run, t0 + (sc.startTime ? parseDuration(sc.startTime) : 0)));
    }
    await Promise.all(ends);
    clearInterval(abortWatch);
  }

  async function runScenario(run: ScenarioRun, at: number): Promise<void> {
    await sleep(at - Date.now());
    if (aborted) return;
    run.startTime = Date.now();
    const sc = run.cfg;
    const fnName = (sc.exec as string | undefined) ?? "default";
    let iterInTest = 0;
    const iterate = async (vu: Vu) => {
      vu.scenario = run;
      vu.iterInTest = iterInTest++;
      vu.busy = true;
      vu.ctx.__ITER = vu.iterInScenario;
      const t = Date.now();
      try {
        await (vu.ns[fnName] as (d: unknown) => unknown)(setupData === undefined ? undefined : JSON.parse(JSON.stringify(setupData)));
      } catch (e) {
        if (!(e instanceof Abort)) scriptError(`iteration of ${run.name}`, e);
      }
      engine.add("iterations", 1, tagsOf(vu));
      engine.add("iteration_duration", Date.now() - t, tagsOf(vu));
      run.iterations++;
      vu.iterInScenario++;
      vu.iterInInstance++;
      vu.busy = false;
    };
    const makeVu = async () => {
      const vu = await newVu(++vuSeq, Object.assign({}, ro.env, (sc.env as Record<string, string> | undefined) ?? {}));
      vus.push(vu);
      return vu;
    };
    const overrun = ro.overrunMs ?? 60_000;
    if (sc.executor === "per-vu-iterations") {
      const n = Number(sc.vus ?? 1);
      const iters = Number(sc.iterations ?? 1);
      const maxMs = parseDuration(sc.maxDuration ?? "10m");
      const pool = await Promise.all(Array.from({ length: n }, makeVu));
      const work = Promise.all(
        pool.map(async (vu) => {
          for (let i = 0; i < iters && !aborted; i++) await iterate(vu);
        }),
      );
      await raceEnd(work, run, maxMs + overrun, () => pool.filter((v) => v.busy).length);
      return;
    }
    // Arrival rates: iteration starts from the (piecewise linear) rate, each on an idle VU, or
    // dropped when none is idle; a missing VU is started for later arrivals, up to maxVUs.
    const unit = parseDuration(sc.timeUnit ?? "1s");
    const segments: { from: number; to: number; ms: number }[] = [];
    if (sc.executor === "constant-arrival-rate") segments.push({ from: Number(sc.rate), to: Number(sc.rate), ms: parseDuration(sc.duration) });
    else {
      let prev = Number(sc.startRate ?? 0);
      for (const st of (sc.stages as { target: number; duration: string }[]) ?? []) {
        segments.push({ from: prev, to: st.target, ms: parseDuration(st.duration) });
        prev = st.target;
      }
    }
    const starts: number[] = [];
    let acc = 0;
    let offset = 0;
    for (const s of segments) {
      for (let t = 0; t < s.ms; t++) {
        if (acc >= starts.length) starts.push(offset + t);
        acc += (s.from + ((s.to - s.from) * t) / s.ms) / unit;
      }
      offset += s.ms;
    }
    const maxVUs = Number(sc.maxVUs ?? sc.preAllocatedVUs);
    const pool = await Promise.all(Array.from({ length: Number(sc.preAllocatedVUs) }, makeVu));
    let starting = 0;
    const running: Promise<void>[] = [];
    const begin = Date.now();
    for (const at of starts) {
      if (aborted) break;
      await sleep(begin + at - Date.now());
      const idle = pool.find((v) => !v.busy);
      if (idle) {
        idle.busy = true;
        running.push(iterate(idle));
        continue;
      }
      run.dropped++;
      engine.add("dropped_iterations", 1, { scenario: run.name, ...run.tags });
      if (pool.length + starting < maxVUs) {
        starting++;
        void makeVu().then((v) => {
          starting--;
          pool.push(v);
        });
      }
    }
    await raceEnd(Promise.all(running).then(() => undefined), run, overrun, () => pool.filter((v) => v.busy).length);
  }

  async function raceEnd(work: Promise<unknown>, run: ScenarioRun, limitMs: number, busy: () => number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), limitMs)));
    const abortPoll = new Promise<"aborted">((r) => {
      const t = setInterval(() => {
        if (aborted) {
          clearInterval(t);
          r("aborted");
        }
      }, 200);
      void work.then(() => clearInterval(t));
    });
    const how = await Promise.race([work.then(() => "done" as const), limit, abortPoll]);
    clearTimeout(timer);
    if (how !== "done") run.abandoned = busy();
    if (how === "late") errors.push(`scenario ${run.name}: ${run.abandoned} iterations still running ${limitMs} ms past its end; abandoned`);
  }

  // Teardown, thresholds at the end (empty sinks included), the summary.
  const durationMs = Date.now() - testStart;
  if (result.exitCode === 0) {
    const teardown = vu0.ns.teardown as ((d: unknown) => unknown) | undefined;
    if (teardown) {
      try {
        await teardown(setupData);
      } catch (e) {
        scriptError("teardown", e);
      }
    }
  }
  let failed = false;
  const metricsOut: Record<string, { type: MetricType; contains: Contains; values: Record<string, number>; thresholds?: Record<string, { ok: boolean }> }> = {};
  for (const { key, list } of parsed) {
    const values = engine.values(key, durationMs, trendStats, percentilesOf(key));
    const samples = engine.sampleCount(key);
    const verdicts: Record<string, { ok: boolean }> = {};
    for (const t of list) {
      const ok = judge(t, values);
      failed ||= !ok;
      verdicts[t.source] = { ok };
      result.thresholds.push({ metric: key, source: t.source, ok, abortOnFail: t.abortOnFail, samples });
    }
    // k6 marks a thresholded metric, and its parent, observed: both are in the summary, samples or not.
    const def = engine.defs.get(parseMetricKey(key).name)!;
    metricsOut[key] = { type: def.type, contains: def.contains, values: summaryValues(def, values), thresholds: verdicts };
    if (key !== def.name && !metricsOut[def.name]) metricsOut[def.name] = { type: def.type, contains: def.contains, values: summaryValues(def, engine.values(def.name, durationMs, trendStats)) };
  }
  function summaryValues(def: MetricDef, values: Record<string, number>): Record<string, number> {
    if (def.type !== "trend") return values;
    const out: Record<string, number> = {};
    for (const s of trendStats) out[s] = values[s]!;
    return out;
  }
  for (const def of engine.defs.values()) {
    if (!engine.observed(def.name) || metricsOut[def.name]) continue;
    metricsOut[def.name] = { type: def.type, contains: def.contains, values: summaryValues(def, engine.values(def.name, durationMs, trendStats)) };
  }
  for (const [k, m] of Object.entries(metricsOut)) result.metrics[k] = { type: m.type, contains: m.contains, samples: engine.sampleCount(k), values: m.values };
  for (const r of runs) result.scenarios[r.name] = { iterations: r.iterations, dropped: r.dropped, abandoned: r.abandoned };
  if (result.exitCode === 0) result.exitCode = aborted?.startsWith("test.abort") ? 108 : failed || aborted ? 99 : 0;
  result.abortedBy = aborted;

  if (typeof vu0.ns.handleSummary === "function" && result.exitCode !== 107) {
    const data = {
      root_group: {
        name: "",
        path: "",
        id: "d41d8cd98f00b204e9800998ecf8427e",
        groups: [],
        checks: Object.entries(checks).map(([name, c]) => ({ name, path: `::${name}`, id: name, passes: c.passes, fails: c.fails })),
      },
      options: { summaryTrendStats: trendStats, summaryTimeUnit: (options.summaryTimeUnit as string | undefined) ?? "", noColor: true },
      state: { isStdOutTTY: false, isStdErrTTY: false, testRunDurationMs: durationMs },
      metrics: metricsOut,
      setup_data: setupData,
    };
    try {
      const sumVu = await newVu(0, ro.env);
      const out = (await (sumVu.ns.handleSummary as (d: unknown) => unknown)(JSON.parse(JSON.stringify(data)))) as Record<string, string> | undefined;
      for (const [k, v] of Object.entries(out ?? {})) {
        if (k === "stdout") result.summaryStdout = v;
        else if (k === "stderr") logs.push(v);
        else {
          const p = path.resolve(cwd, k);
          try {
            fs.writeFileSync(p, v, { flag: "w" });
            result.summaryFiles.push(p);
          } catch (e) {
            result.summaryWriteErrors.push(`could not open '${k}': ${e instanceof Error ? e.message : String(e)}`);
          }
        }
      }
    } catch (e) {
      scriptError("handleSummary", e);
    }
  }
  stopAll();
  await http?.terminate();
  process.off("unhandledRejection", onRejection);
  return result;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}
