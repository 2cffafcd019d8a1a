/** The benchmark's report: a Markdown table and a hand-written SVG chart of the same numbers. */
import type { ConnectResult, StepResult } from "./session.ts";
import type { SystemKind } from "./launch.ts";

export interface SystemResult {
  system: SystemKind;
  connect: ConnectResult;
  steps: StepResult[];
  /** Rates whose first attempt failed and were measured again (the table shows the second attempt). */
  retried?: number[];
  /** Highest passing step (delivery ratio 1.0, no errors, p99 < 100 ms) below the first that failed twice. */
  saturation?: { offeredRate: number; deliveriesPerSec: number; p99: number; lowerBound?: boolean };
  /**
   * With `--ladders n` (n > 1): every ladder's saturation in deliveries/s (0: none), in the order
   * they ran; `steps` and `saturation` are then the median ladder's.
   */
  ladders?: number[];
}
export interface HalfRateResult {
  system: SystemKind;
  offeredRate: number;
  p99s: number[];
  p99Median: number;
  minDeliveryRatio: number;
}
export interface IdleResult {
  system: SystemKind;
  connections: number;
  connectErrors: number;
  rssBefore: number;
  rssAfter: number;
  bytesPerConnection: number;
}
export interface BenchResult {
  at: string;
  machine: { cpu: string; cores: number; memGb: number; node: string; kernel: string; commit: string; loadAvgAtStart: number; loadAvgAtEnd?: number };
  config: { users: number; rooms: number; stepSeconds: number; idle: number; workers: number; p99LimitMs: number; ladder: number[]; quick: boolean; halfRounds: number };
  systems: SystemResult[];
  halfSeed?: HalfRateResult[];
  idle: IdleResult[];
  notes: string[];
  durationS?: number;
}

export const LABEL: Record<SystemKind, string> = {
  chat: "project, 1 node (SQLite, durable)",
  cluster: "project, 2 nodes + nginx + Redis",
  seed: "seed reference (no storage)",
  raw: "raw ws floor",
};
const COLOR: Record<SystemKind, string> = { chat: "#1f77b4", cluster: "#9467bd", seed: "#ff7f0e", raw: "#2ca02c" };

const fmt = (n: number | undefined, d = 0) => (n === undefined ? "–" : n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d }));
const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || !b ? "–" : `${(a / b).toFixed(2)}×`);

export function renderMarkdown(r: BenchResult, svgName: string): string {
  const fan = r.config.users / Math.max(1, r.config.rooms);
  const seed = r.systems.find((s) => s.system === "seed");
  const seedSat = seed?.saturation;
  const at = (s: SystemResult, rate: number | undefined) => (rate === undefined ? undefined : s.steps.find((x) => x.offeredRate === rate));
  const out: string[] = [];
  out.push(`# Benchmark ${r.at.slice(0, 16).replace("T", " ")} UTC`, "");
  out.push(
    `Machine: ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memGb} GB, Node ${r.machine.node}, Linux ${r.machine.kernel}, commit ${r.machine.commit || "?"}; ` +
      `1-minute load average ${r.machine.loadAvgAtStart.toFixed(2)} at the start, ${r.machine.loadAvgAtEnd?.toFixed(2) ?? "?"} at the end (other work shares the machine).`,
    `Load: ${r.config.users} users in ${r.config.rooms} rooms (each message fans out to ${fan} sockets, the sender's included), ` +
      `${r.config.stepSeconds} s per step, ${r.config.workers === 0 ? "generator in-process" : `${r.config.workers} generator process(es)`} on the same machine. ` +
      `Saturation: the highest step with delivery ratio 1.0, no errors and p99 < ${r.config.p99LimitMs} ms below the first step that failed twice in a row (a failed step is repeated once: the machine is shared); "≥" when no step failed.${r.config.quick ? " **Quick mode.**" : ""}`,
    "",
  );
  const halfOf = (k: SystemKind) => r.halfSeed?.find((h) => h.system === k);
  out.push("| system | saturation (deliveries/s) | at msg/s | p99 there (ms) | vs seed | p99 at half the seed's saturation, median of rounds (ms) | delivery ratio at the seed's saturation rate |");
  out.push("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const s of r.systems) {
    const h = halfOf(s.system);
    const ladders = s.ladders && s.ladders.length > 1 ? ` (ladders ${s.ladders.map((v) => fmt(v)).join(", ")})` : "";
    const full = at(s, seedSat?.offeredRate);
    out.push(
      `| ${LABEL[s.system]} | ${s.saturation?.lowerBound ? "≥ " : ""}${fmt(s.saturation?.deliveriesPerSec)}${ladders} | ${fmt(s.saturation?.offeredRate)} | ${fmt(s.saturation?.p99, 1)} | ${ratio(s.saturation?.deliveriesPerSec, seedSat?.deliveriesPerSec)} | ${h ? `${fmt(h.p99Median, 1)} (at ${h.offeredRate}/s; rounds ${h.p99s.map((v) => fmt(v, 1)).join(", ")})` : "–"} | ${full ? full.deliveryRatio.toFixed(4) : "–"} |`,
    );
  }
  const seedLadders = seed?.ladders;
  if (seedLadders && seedLadders.length > 1) {
    out.push("", `Saturation is the median of ${seedLadders.length} ladders per system, run in alternating order (first ladder: the systems in the order above; second: reversed; ...). Each ladder's ratio to the seed's ladder of the same round:`, "");
    for (const s of r.systems) {
      if (s.system === "seed" || !s.ladders) continue;
      out.push(`- ${LABEL[s.system]}: ${s.ladders.map((v, i) => ratio(v, seedLadders[i])).join(", ")}`);
    }
  }
  if (r.idle.length) {
    const seedIdle = r.idle.find((i) => i.system === "seed")?.bytesPerConnection;
    out.push("", "Memory per idle connection (fresh server, connected sockets that joined nothing, RSS delta):", "");
    out.push("| system | connections | RSS before (MB) | RSS after (MB) | KB per connection | vs seed |", "| --- | ---: | ---: | ---: | ---: | ---: |");
    for (const i of r.idle) {
      out.push(
        `| ${LABEL[i.system]} | ${fmt(i.connections)}${i.connectErrors ? ` (${i.connectErrors} failed)` : ""} | ${fmt(i.rssBefore / 2 ** 20, 1)} | ${fmt(i.rssAfter / 2 ** 20, 1)} | ${fmt(i.bytesPerConnection / 1024, 1)} | ${ratio(i.bytesPerConnection, seedIdle)} |`,
      );
    }
  }
  out.push("", `![deliveries/s and p99 against offered load](${svgName})`, "");
  for (const s of r.systems) {
    out.push(`### ${LABEL[s.system]}`, "");
    if (s.retried?.length) out.push(`Repeated after a failed first attempt: ${s.retried.join(", ")} msg/s (the table shows the second attempt).`, "");
    out.push(`${fmt(s.connect.connections)} connections in ${fmt(s.connect.connectWallMs)} ms (connect p50 ${fmt(s.connect.connectMs.p50, 1)} ms, p99 ${fmt(s.connect.connectMs.p99, 1)} ms), ${s.connect.connectErrors} failed.`, "");
    out.push("| msg/s offered | deliveries/s offered | delivered/s | ratio | p50 ms | p90 ms | p99 ms | max ms | errors | server CPU (cores) | generator CPU (cores) |");
    out.push("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (const x of s.steps) {
      const offered = x.durationS ? Math.round(x.expected / x.durationS) : 0;
      out.push(
        `| ${fmt(x.offeredRate)} | ${fmt(offered)} | ${fmt(x.deliveriesPerSec)} | ${x.deliveryRatio.toFixed(4)} | ${fmt(x.latencyMs.p50, 1)} | ${fmt(x.latencyMs.p90, 1)} | ${fmt(x.latencyMs.p99, 1)} | ${fmt(x.latencyMs.max, 0)} | ${x.errors} | ${fmt(x.serverCpuCores, 2)} | ${fmt(x.generatorCpuCores, 2)} |`,
      );
    }
    out.push("");
  }
  if (r.notes.length) out.push("Notes:", "", ...r.notes.map((n) => `- ${n}`), "");
  if (r.durationS) out.push(`Run took ${r.durationS} s.`, "");
  return out.join("\n");
}

/** Two panels against offered deliveries/s: delivered/s (linear) and p99 (log). */
export function renderSvg(r: BenchResult): string {
  const W = 960;
  const H = 440;
  const pad = { l: 70, r: 20, t: 40, b: 90 };
  const pw = (W - 40) / 2 - pad.l - pad.r;
  const ph = H - pad.t - pad.b;
  const points = r.systems.map((s) => ({
    s,
    pts: s.steps
      .map((x) => ({ off: x.durationS ? x.expected / x.durationS : 0, got: x.deliveriesPerSec, p99: Math.max(0.1, x.latencyMs.p99) }))
      .sort((a, b) => a.off - b.off),
  }));
  const maxX = Math.max(1, ...points.flatMap((p) => p.pts.map((q) => q.off)));
  const maxY = Math.max(1, ...points.flatMap((p) => p.pts.map((q) => q.got)));
  const niceMax = (v: number) => {
    const e = 10 ** Math.floor(Math.log10(v));
    return Math.ceil(v / e) * e;
  };
  const xm = niceMax(maxX);
  const ym = niceMax(Math.max(maxY, maxX));
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="14">Chat fan-out, ${r.config.users} users in ${r.config.rooms} rooms, ${r.machine.cores} cores (${r.at.slice(0, 10)})</text>`);
  const panel = (ox: number, title: string, yLabel: string, yOf: (v: number) => number, yTicks: { v: number; label: string }[], val: (q: { got: number; p99: number }) => number, extra: string) => {
    const X = (v: number) => ox + pad.l + (v / xm) * pw;
    out.push(`<text x="${ox + pad.l + pw / 2}" y="${pad.t - 8}" text-anchor="middle" font-size="12">${title}</text>`);
    out.push(`<rect x="${ox + pad.l}" y="${pad.t}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
    for (const t of yTicks) {
      const y = yOf(t.v);
      out.push(`<line x1="${ox + pad.l}" x2="${ox + pad.l + pw}" y1="${y}" y2="${y}" stroke="#eee"/><text x="${ox + pad.l - 5}" y="${y + 4}" text-anchor="end">${t.label}</text>`);
    }
    for (let i = 0; i <= 5; i++) {
      const v = (xm * i) / 5;
      out.push(`<text x="${X(v)}" y="${pad.t + ph + 15}" text-anchor="middle">${fmtK(v)}</text>`);
    }
    out.push(`<text x="${ox + pad.l + pw / 2}" y="${pad.t + ph + 32}" text-anchor="middle">offered deliveries/s</text>`);
    out.push(`<text transform="translate(${ox + 14},${pad.t + ph / 2}) rotate(-90)" text-anchor="middle">${yLabel}</text>`);
    out.push(extra.replace(/OX/g, String(ox)));
    for (const { s, pts } of points) {
      const c = COLOR[s.system];
      const d = pts.map((q, i) => `${i ? "L" : "M"}${X(q.off).toFixed(1)},${yOf(val(q)).toFixed(1)}`).join(" ");
      out.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="2"/>`);
      for (const q of pts) out.push(`<circle cx="${X(q.off).toFixed(1)}" cy="${yOf(val(q)).toFixed(1)}" r="3" fill="${c}"/>`);
      if (s.saturation) {
        const q = pts.find((p) => p.got === s.saturation?.deliveriesPerSec);
        if (q) out.push(`<circle cx="${X(q.off).toFixed(1)}" cy="${yOf(val(q)).toFixed(1)}" r="7" fill="none" stroke="${c}" stroke-width="2"/>`);
      }
    }
  };
  const linY = (v: number) => pad.t + ph - (Math.min(v, ym) / ym) * ph;
  const linTicks = Array.from({ length: 6 }, (_, i) => ({ v: (ym * i) / 5, label: fmtK((ym * i) / 5) }));
  const diag = `<line x1="${pad.l}" y1="${linY(0)}" x2="${pad.l + (Math.min(xm, ym) / xm) * pw}" y2="${linY(Math.min(xm, ym))}" stroke="#bbb" stroke-dasharray="4 4" transform="translate(OX,0)"/>`;
  panel(0, "delivered/s (circled: saturation point)", "deliveries/s", linY, linTicks, (q) => q.got, diag);
  const lo = 0.1;
  const hi = 10_000;
  const logY = (v: number) => pad.t + ph - ((Math.log10(Math.min(Math.max(v, lo), hi)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * ph;
  const logTicks = [0.1, 1, 10, 100, 1000, 10000].map((v) => ({ v, label: `${v}` }));
  const limit = `<line x1="${pad.l}" x2="${pad.l + pw}" y1="${logY(r.config.p99LimitMs)}" y2="${logY(r.config.p99LimitMs)}" stroke="#d62728" stroke-dasharray="5 3" transform="translate(OX,0)"/>`;
  panel(W / 2, `p99 latency, ms (log; dashed: ${r.config.p99LimitMs} ms)`, "p99 ms", logY, logTicks, (q) => q.p99, limit);
  let lx = pad.l;
  for (const s of r.systems) {
    out.push(`<rect x="${lx}" y="${H - 28}" width="12" height="12" fill="${COLOR[s.system]}"/><text x="${lx + 16}" y="${H - 18}">${LABEL[s.system]}</text>`);
    lx += 16 + LABEL[s.system].length * 6.2 + 20;
  }
  out.push("</svg>");
  return out.join("\n") + "\n";
}

function fmtK(v: number): string {
  return v >= 1000 ? `${Math.round(v / 100) / 10}k` : `${Math.round(v)}`;
}
