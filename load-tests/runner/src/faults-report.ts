/**
 * The report of `pnpm bench:faults`: a table per scenario for the terminal, one Markdown table of
 * every scenario (bench/results/<stamp>-faults.md, and docs/reliability.md with --docs), and which
 * of the issue's figures each scenario met.
 */
import { spreadRatio } from "../../../infra/cluster/balance.ts";
import type { Latency, ScenarioResult } from "./faults-run.ts";

export interface FaultsRun {
  startedAt: string;
  commit: string;
  machine: string;
  params: Record<string, unknown>;
  scenarios: ScenarioResult[];
}

export interface FigureCheck {
  name: string;
  value: string;
  target: string;
  met: boolean;
}

const fmtLatency = (l: Latency) => (l.count === 0 ? "–" : `${l.p50} / ${l.p99} / ${l.max}`);

export function spreadOf(r: ScenarioResult): number {
  return spreadRatio(Object.values(r.connectionsAfter));
}

const fmtRatio = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "∞");

function fmtConnections(c: Record<string, number>): string {
  return Object.entries(c).map(([id, n]) => `${id.replace("node-", "n")} ${n}`).join(", ");
}

/** The issue's figures for this scenario, each with its value and whether it was met. */
export function figures(r: ScenarioResult): FigureCheck[] {
  const out: FigureCheck[] = [
    { name: "acknowledged but lost", value: String(r.ackedLost), target: "0", met: r.ackedLost === 0 },
    { name: "stored twice", value: String(r.storedTwice), target: "0", met: r.storedTwice === 0 },
    { name: "SDK-like clients with gaps", value: String(r.sdk.clientsWithGaps), target: "0", met: r.sdk.clientsWithGaps === 0 },
  ];
  const t = r.targets;
  if (t.seedGaps !== undefined) out.push({ name: "seed-like clients with gaps", value: String(r.seed.clientsWithGaps), target: String(t.seedGaps), met: r.seed.clientsWithGaps <= t.seedGaps });
  if (t.reconnectP99Ms !== undefined) {
    const p99 = Math.max(r.sdk.reconnects.p99, r.seed.reconnects.p99);
    out.push({ name: "reconnect p99 (ms)", value: String(p99), target: `≤ ${t.reconnectP99Ms}`, met: p99 <= t.reconnectP99Ms });
  }
  if (t.nginx502 !== undefined) out.push({ name: "nginx 502", value: String(r.nginx.status502), target: String(t.nginx502), met: r.nginx.status502 <= t.nginx502 });
  if (t.spread !== undefined) {
    const s = spreadOf(r);
    out.push({ name: "busiest / least busy node", value: fmtRatio(s), target: `≤ ${t.spread}`, met: s <= t.spread });
  }
  return out;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("   ")).join("\n");
}

/** One scenario, for the terminal. */
export function renderScenario(r: ScenarioResult): string {
  const rows = [
    ["", "SDK-like", "seed-like"],
    ["clients", String(r.sdk.clients), String(r.seed.clients)],
    ["clients with gaps at the end", String(r.sdk.clientsWithGaps), String(r.seed.clientsWithGaps)],
    ["seqs missing (client, seq)", String(r.sdk.missing), String(r.seed.missing)],
    ["reconnections", String(r.sdk.reconnects.count), String(r.seed.reconnects.count)],
    ["reconnect p50 / p99 / max (ms)", fmtLatency(r.sdk.reconnects), fmtLatency(r.seed.reconnects)],
  ];
  const n = r.nginx;
  const lines = [
    `${r.title} (fault ${(r.faultMs / 1000).toFixed(1)} s)`,
    table(rows),
    `sends: ${r.sent} sent, ${r.acknowledged} acknowledged, ${r.failed} failed${r.failures.length ? ` (${r.failures.join("; ")})` : ""}; ${r.ackedLost} acknowledged but lost; ${r.storedTwice} stored twice; ${r.stored} stored; ${r.storeSeqGaps} seq gaps in the store`,
    `nginx: ${n.status502} × 502, ${n.status5xx} × 5xx of ${n.requests} requests${n.status5xx ? ` (${Object.entries(n.byKind).map(([k, v]) => `${k} ${v}`).join(", ")})` : ""}; "no live upstreams" ${n.noLiveUpstreams}; refused connects passed to the next node ${n.refusedConnects}; session requests answered 400 (unknown sid) ${n.session400}`,
    ...n.samples.map((s) => `  ${s}`),
    `connections afterwards: ${fmtConnections(r.connectionsAfter)} (busiest / least busy ${fmtRatio(spreadOf(r))})`,
    `figures: ${figures(r).map((f) => `${f.name} ${f.value} (${f.target}) ${f.met ? "met" : "NOT MET"}`).join("; ")}`,
  ];
  return lines.join("\n");
}

/** Every scenario in one Markdown table, and the figures under it. */
export function renderMarkdown(run: FaultsRun): string {
  const head =
    "| scenario | sent | acked | acked lost | stored twice | seq gaps (store) | clients with gaps: SDK-like / seed-like | seqs missing: SDK-like / seed-like | reconnect p50 / p99 / max ms: SDK-like; seed-like | nginx 502 / 5xx | connections per node afterwards |\n" +
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |";
  const rows = run.scenarios.map((r) =>
    [
      r.title,
      r.sent,
      r.acknowledged,
      r.ackedLost,
      r.storedTwice,
      r.storeSeqGaps,
      `${r.sdk.clientsWithGaps} / ${r.seed.clientsWithGaps}`,
      `${r.sdk.missing} / ${r.seed.missing}`,
      `${fmtLatency(r.sdk.reconnects)}; ${fmtLatency(r.seed.reconnects)}`,
      `${r.nginx.status502} / ${r.nginx.status5xx}`,
      `${fmtConnections(r.connectionsAfter)} (${fmtRatio(spreadOf(r))}×)`,
    ].join(" | "),
  );
  const figs = run.scenarios.map((r) => `| ${r.title} | ${figures(r).map((f) => `${f.name} ${f.value} (${f.target}): ${f.met ? "met" : "**not met**"}`).join("; ")} |`);
  return [
    head,
    ...rows.map((r) => `| ${r} |`),
    "",
    "| scenario | the issue's figures |",
    "| --- | --- |",
    ...figs,
  ].join("\n");
}
