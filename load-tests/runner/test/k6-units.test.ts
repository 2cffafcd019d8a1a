/**
 * The k6 library's pure parts, without a server: the reconnection backoff against socket.io-client's
 * own settings, the vendored text summary, and the live delivery accounting (a k6 script,
 * fixtures/k6-delivery-units.js, run by the shim on a fixed timeline).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { Manager } from "socket.io-client";
import { SOCKET_IO_DEFAULTS, createBackoff } from "../../k6/lib/backoff.js";
import { formatData, formatTime, textSummary } from "../../k6/lib/text-summary.js";
import { explain, runK6 } from "./k6-shim/harness.ts";

describe("backoff", () => {
  test("starts from socket.io-client's own reconnection settings", () => {
    const m = new Manager("http://127.0.0.1:1", { autoConnect: false });
    assert.equal(SOCKET_IO_DEFAULTS.min, m.reconnectionDelay());
    assert.equal(SOCKET_IO_DEFAULTS.max, m.reconnectionDelayMax());
    assert.equal(SOCKET_IO_DEFAULTS.jitter, m.randomizationFactor());
    assert.equal(m.reconnectionAttempts(), Infinity, "k6's RECONNECT_ATTEMPTS=0 means the same: no limit");
  });

  test("doubles from the minimum up to the maximum, jittered by up to the factor either way, and resets", () => {
    const low = createBackoff({}, () => 0);
    assert.deepEqual([1, 2, 3, 4, 5].map(() => low.next()), [1000, 2000, 4000, 5000, 5000]);
    low.reset();
    assert.equal(low.next(), 1000);
    const high = createBackoff({}, () => 0.999);
    assert.deepEqual([1, 2, 3].map(() => high.next()), [1499, 2999, 5000]);
    const flat = createBackoff({ jitter: 0, min: 100, max: 250 });
    assert.deepEqual([1, 2, 3].map(() => flat.next()), [100, 200, 250]);
    for (let run = 0; run < 200; run++) {
      const b = createBackoff();
      for (let attempt = 0; attempt < 6; attempt++) {
        const nominal = Math.min(1000 * 2 ** attempt, 5000);
        const d = b.next();
        assert.ok(d >= Math.floor(Math.min(1000 * 2 ** attempt, 5000) * 0.5) && d <= 5000, `attempt ${attempt}: ${d} (nominal ${nominal})`);
      }
    }
  });
});

describe("text summary", () => {
  const data = {
    root_group: { name: "", path: "", id: "x", groups: [], checks: [{ name: "status 200", path: "::status 200", id: "a", passes: 97, fails: 3 }, { name: "page not empty", path: "", id: "b", passes: 100, fails: 0 }] },
    options: { summaryTrendStats: ["avg", "med", "p(95)", "p(99)", "max"], summaryTimeUnit: "", noColor: true },
    state: { isStdOutTTY: false, isStdErrTTY: false, testRunDurationMs: 65_400 },
    metrics: {
      e2e_latency: { type: "trend", contains: "time", values: { avg: 3.2, med: 2, "p(95)": 12.345, "p(99)": 250.5, max: 1500 } },
      "e2e_latency{via:live}": { type: "trend", contains: "time", values: { avg: 3, med: 2, "p(95)": 12, "p(99)": 240, max: 900 }, thresholds: { "p(99)<250": { ok: true }, "p(95)<10": { ok: false } } },
      delivery_ratio: { type: "rate", contains: "default", values: { rate: 0.9995, passes: 1999, fails: 1 }, thresholds: { "rate>=0.999": { ok: true } } },
      messages_sent: { type: "counter", contains: "default", values: { count: 1200, rate: 18.35 } },
      vus: { type: "gauge", contains: "default", values: { value: 2, min: 1, max: 20 } },
      http_req_duration: { type: "trend", contains: "time", values: { avg: 0.5, med: 0.4, "p(95)": 0.9, "p(99)": 0.99, max: 61_000 } },
      data_received: { type: "counter", contains: "data", values: { count: 1_300_000, rate: 31_000 } },
      checks: { type: "rate", contains: "default", values: { rate: 197 / 200, passes: 197, fails: 3 } },
    },
    setup_data: { tokens: ["eyJsecret"] },
  };

  test("shows every threshold with the value it was judged on, the checks, and every metric with its trend stats", () => {
    const text = textSummary(data, { indent: " ", enableColors: false });
    assert.match(text, /█ THRESHOLDS/);
    assert.match(text, /✓ 'p\(99\)<250' p\(99\)=240ms/);
    assert.match(text, /✗ 'p\(95\)<10' p\(95\)=12ms/);
    assert.match(text, /✓ 'rate>=0\.999' rate=99\.95%/);
    assert.match(text, /✗ status 200\n.*↳ {2}97% — ✓ 97 \/ ✗ 3/);
    assert.match(text, /✓ page not empty/);
    assert.match(text, /e2e_latency\.+: avg=3\.2ms med=2ms p\(95\)=12\.35ms p\(99\)=250\.5ms max=1\.5s/);
    assert.match(text, /\{ via:live \}\.+: avg=3ms/, "a sub-metric under its metric");
    assert.match(text, /messages_sent\.+: 1200 {2}18\.35\/s/);
    assert.match(text, /vus\.+: 2 {2}min=1 max=20/);
    assert.match(text, /HTTP\n.*http_req_duration\.+: avg=500µs .* max=1m1s/);
    assert.match(text, /data_received\.+: 1\.3 MB {2}31 kB\/s/);
    assert.match(text, /running for 1m5\.4s/);
    const ESC = String.fromCharCode(27);
    assert.doesNotMatch(text, /eyJ|setup_data/, "no setup data");
    assert.ok(!text.includes(ESC), "no colours when not asked");
    assert.ok(textSummary(data, { enableColors: true }).includes(`${ESC}[32m✓${ESC}[0m`));
  });

  test("says so when a threshold judges a statistic summaryTrendStats does not show", () => {
    const text = textSummary({ ...data, metrics: { t: { type: "trend", contains: "time", values: { avg: 1 }, thresholds: { "p(99)<5": { ok: true } } } } }, {});
    assert.match(text, /'p\(99\)<5' p\(99\)=\(not in summaryTrendStats\)/);
  });

  test("formats times and sizes as k6 does, or in a fixed summaryTimeUnit", () => {
    assert.equal(formatTime(0.25, ""), "250µs");
    assert.equal(formatTime(12.3456, ""), "12.35ms");
    assert.equal(formatTime(2500, ""), "2.5s");
    assert.equal(formatTime(2500, "ms"), "2500ms");
    assert.equal(formatTime(2500, "s"), "2.5s");
    assert.equal(formatData(999), "999 B");
    assert.equal(formatData(1_234_567), "1.2 MB");
  });
});

describe("live delivery accounting", () => {
  test("decides each (member, seq) once: in time, overdue, late, or not expected after leaving", async () => {
    const r = await runK6(path.join(import.meta.dirname, "fixtures/k6-delivery-units.js"), {});
    assert.equal(r.exitCode, 0, explain(r));
    assert.deepEqual(r.errors, []);
    const m = r.metrics;
    assert.deepEqual({ passes: m.delivery_ratio!.values.passes, fails: m.delivery_ratio!.values.fails }, { passes: 3, fails: 7 });
    assert.equal(m.messages_missing!.values.count, 7);
    assert.equal(m.messages_late!.values.count, 2);
    assert.equal(m.messages_delivered!.values.count, 5);
    assert.equal(m.e2e_latency!.samples, 5);
    assert.equal(m.e2e_latency!.values.min, 5, "10 ms at arrival minus the stamp's 5");
  });
});
