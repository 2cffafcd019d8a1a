/**
 * The parent side of a load run: splits the plan over workers (in-process, or forked processes to
 * use every core), connects everyone once, then runs steps of offered load on the same
 * connections, waiting after each for deliveries to drain before collecting the numbers.
 */
import { fork, type ChildProcess } from "node:child_process";
import path from "node:path";
import { Histogram, type LatencySummary } from "./hist.ts";
import { cpuSecondsOfAll, rssOfAll } from "./proc-mem.ts";
import type { Plan } from "./plan.ts";
import { LoadWorker, nowMs, type FromWorker, type StepCounters, type ToWorker } from "./worker.ts";

export interface SessionOptions {
  /** 0: everything in this process; n ≥ 1: n forked worker processes. */
  workers: number;
  connectConcurrency?: number;
  /** Server processes whose RSS is read (Linux /proc). */
  serverPids?: number[];
  /** A progress line on stderr while it runs. */
  progress?: boolean;
  /** Longest wait for deliveries after the last send of a step. */
  drainTimeoutMs?: number;
}

export interface ConnectResult {
  connections: number;
  connectErrors: number;
  errorSamples: string[];
  connectMs: LatencySummary;
  connectWallMs: number;
  serverRssBefore?: number;
  serverRssAfter?: number;
  /** (RSS after connecting and joining − RSS before) / connections. */
  serverRssPerConnection?: number;
}

export interface StepResult {
  step: number;
  offeredRate: number;
  durationS: number;
  sent: number;
  expected: number;
  delivered: number;
  deliveryRatio: number;
  deliveriesPerSec: number;
  errors: number;
  errorCodes: Record<string, number>;
  /** Connections lost (ended by the server) since the previous step was reported; the first step: since connecting. */
  dropped: number;
  latencyMs: LatencySummary;
  serverRss?: number;
  /** Server CPU over the step (send and drain), in cores: 1.0 is one core busy. */
  serverCpuCores?: number;
  /** Server CPU seconds (user + system, every process and thread, from /proc) over the step, send and drain. */
  serverCpuSeconds?: number;
  /** serverCpuSeconds per delivered message, in µs: the stable cost figure on a shared machine. */
  cpuUsPerDelivery?: number;
  /** The load generator's own CPU over the step, in cores (in-process workers: this process). */
  generatorCpuCores: number;
}

interface Link {
  send(m: ToWorker): void;
  stop(): Promise<void>;
}

export class LoadSession {
  private readonly plan: Plan;
  private readonly opts: SessionOptions;
  private links: Link[] = [];
  private waiters: ((m: FromWorker) => boolean)[] = [];
  private lastProgress = new Map<number, { step: number; sending: boolean; counters: StepCounters; dropped: number }>();
  private stepNo = 0;
  private errors: string[] = [];

  constructor(plan: Plan, opts: SessionOptions) {
    this.plan = plan;
    this.opts = opts;
  }

  private onMessage = (m: FromWorker): void => {
    if (m.type === "progress") this.lastProgress.set(m.workerId, m);
    if (m.type === "error") this.errors.push(`worker ${m.workerId}: ${m.message}`);
    this.waiters = this.waiters.filter((w) => !w(m));
  };

  /** Resolves with `n` messages matching `pick` (rejects after `timeoutMs`). */
  private collect<T extends FromWorker>(n: number, pick: (m: FromWorker) => m is T, timeoutMs: number, what: string): Promise<T[]> {
    return new Promise((resolve, reject) => {
      const got: T[] = [];
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what} (${got.length}/${n}) ${this.errors.join("; ")}`)), timeoutMs);
      this.waiters.push((m) => {
        if (m.type === "error") {
          clearTimeout(timer);
          reject(new Error(m.message));
          return true;
        }
        if (!pick(m)) return false;
        got.push(m);
        if (got.length < n) return false;
        clearTimeout(timer);
        resolve(got);
        return true;
      });
    });
  }

  private startLinks(n: number): void {
    if (n === 0) {
      const w = new LoadWorker((m) => queueMicrotask(() => this.onMessage(m)));
      this.links = [{ send: (m) => void w.handle(m), stop: async () => {} }];
      return;
    }
    const entry = path.join(import.meta.dirname, "worker-main.ts");
    for (let i = 0; i < n; i++) {
      const child: ChildProcess = fork(entry, [], { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv: [] });
      child.on("message", (m: FromWorker) => this.onMessage(m));
      const exited = new Promise<void>((r) => child.once("exit", () => r()));
      this.links.push({
        send: (m) => child.send(m),
        stop: async () => {
          const t = setTimeout(() => child.kill("SIGKILL"), 3000);
          if (child.connected) child.send({ type: "close" });
          await exited;
          clearTimeout(t);
        },
      });
    }
  }

  /** Starts the workers, connects every user and joins its room. */
  async connect(): Promise<ConnectResult> {
    const n = this.opts.workers;
    this.startLinks(n);
    const count = this.links.length;
    const pids = this.opts.serverPids ?? [];
    const rssBefore = pids.length ? rssOfAll(pids) : undefined;
    const t0 = nowMs();
    const ticker = this.opts.progress ? setInterval(() => process.stderr.write(`\rconnecting ${this.plan.users.length} users…`), 1000) : undefined;
    const readyP = this.collect(count, (m): m is Extract<FromWorker, { type: "ready" }> => m.type === "ready", 300_000, "workers to connect");
    this.links.forEach((l, w) =>
      l.send({
        type: "init",
        workerId: w,
        target: this.plan.target,
        url: this.plan.url,
        users: this.plan.users.filter((_u, i) => i % count === w),
        rooms: this.plan.rooms,
        roomSizes: this.plan.roomSizes,
        connectConcurrency: Math.max(1, Math.ceil((this.opts.connectConcurrency ?? 64) / count)),
      }),
    );
    const ready = await readyP.finally(() => ticker && clearInterval(ticker));
    const connectWallMs = nowMs() - t0;
    await new Promise((r) => setTimeout(r, 500)); // joins without acks (seed, raw) settle; the server's RSS settles
    const rssAfter = pids.length ? rssOfAll(pids) : undefined;
    const hist = new Histogram();
    for (const r of ready) hist.addSparse(r.connectHist);
    const connections = ready.reduce((a, r) => a + r.connected, 0);
    if (this.opts.progress) process.stderr.write(`\rconnected ${connections}/${this.plan.users.length} in ${(connectWallMs / 1000).toFixed(1)} s\n`);
    return {
      connections,
      connectErrors: ready.reduce((a, r) => a + r.connectErrors, 0),
      errorSamples: ready.flatMap((r) => r.errorSamples).slice(0, 5),
      connectMs: hist.summary(),
      connectWallMs: Math.round(connectWallMs),
      serverRssBefore: rssBefore,
      serverRssAfter: rssAfter,
      serverRssPerConnection: rssBefore !== undefined && rssAfter !== undefined && connections > 0 ? Math.round((rssAfter - rssBefore) / connections) : undefined,
    };
  }

  private totals(step: number): StepCounters & { sending: boolean } {
    const t = { sent: 0, expected: 0, delivered: 0, errors: 0, errorCodes: {}, sending: false };
    for (const p of this.lastProgress.values()) {
      if (p.step !== step) {
        t.sending = true; // that worker has not reported this step yet
        continue;
      }
      t.sent += p.counters.sent;
      t.expected += p.counters.expected;
      t.delivered += p.counters.delivered;
      t.errors += p.counters.errors;
      t.sending ||= p.sending;
    }
    return t;
  }

  /** Offers `rate` messages/s for `durationS`, then waits for deliveries to drain and reports. */
  async step(rate: number, durationS: number): Promise<StepResult> {
    const step = ++this.stepNo;
    const count = this.links.length;
    const durationMs = Math.round(durationS * 1000);
    this.lastProgress.clear();
    const pids = this.opts.serverPids ?? [];
    const cpu0 = pids.length ? cpuSecondsOfAll(pids) : undefined;
    const t0 = nowMs();
    for (const l of this.links) l.send({ type: "step", step, rate: rate / count, durationMs });
    const drainTimeout = this.opts.drainTimeoutMs ?? 5000;
    let sendEnd = 0;
    let lastDelivered = -1;
    let lastChange = 0;
    for (let i = 0; ; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const now = nowMs();
      const t = this.totals(step);
      if (this.opts.progress && i % 5 === 0) {
        const el = (now - t0) / 1000;
        process.stderr.write(
          `\rstep ${step} ${rate}/s ${el.toFixed(0)}s sent ${t.sent} delivered ${t.delivered}/${t.expected} (${t.expected ? ((100 * t.delivered) / t.expected).toFixed(1) : "-"}%) errors ${t.errors}   `,
        );
      }
      if (this.lastProgress.size < count || t.sending) {
        if (now - t0 > durationMs + 60_000) throw new Error(`step ${step} never finished sending ${this.errors.join("; ")}`);
        continue;
      }
      if (sendEnd === 0) sendEnd = now;
      if (t.delivered !== lastDelivered) {
        lastDelivered = t.delivered;
        lastChange = now;
      }
      if (t.delivered >= t.expected || now - sendEnd > drainTimeout || now - lastChange > 1500) break;
    }
    const reports = this.collect(count, (m): m is Extract<FromWorker, { type: "report" }> => m.type === "report" && m.step === step, 30_000, "step reports");
    for (const l of this.links) l.send({ type: "report", step });
    const got = await reports;
    const wallS = (nowMs() - t0) / 1000;
    const cpu1 = pids.length ? cpuSecondsOfAll(pids) : undefined;
    if (this.opts.progress) process.stderr.write("\n");
    const hist = new Histogram();
    const sum = { sent: 0, expected: 0, delivered: 0, errors: 0, dropped: 0 };
    const errorCodes: Record<string, number> = {};
    for (const r of got) {
      hist.addSparse(r.latency);
      sum.sent += r.counters.sent;
      sum.expected += r.counters.expected;
      sum.delivered += r.counters.delivered;
      sum.errors += r.counters.errors;
      sum.dropped += r.dropped;
      for (const [k, v] of Object.entries(r.counters.errorCodes)) errorCodes[k] = (errorCodes[k] ?? 0) + v;
    }
    const cores = (sec: number) => Math.round((sec / wallS) * 100) / 100;
    return {
      step,
      offeredRate: rate,
      durationS,
      ...sum,
      deliveryRatio: sum.expected ? Math.round((sum.delivered / sum.expected) * 1e6) / 1e6 : 0,
      deliveriesPerSec: Math.round(sum.delivered / durationS),
      errorCodes,
      latencyMs: hist.summary(),
      serverRss: pids.length ? rssOfAll(pids) : undefined,
      serverCpuCores: cpu0 !== undefined && cpu1 !== undefined ? cores(cpu1 - cpu0) : undefined,
      serverCpuSeconds: cpu0 !== undefined && cpu1 !== undefined ? Math.round((cpu1 - cpu0) * 100) / 100 : undefined,
      cpuUsPerDelivery: cpu0 !== undefined && cpu1 !== undefined && sum.delivered > 0 ? Math.round(((cpu1 - cpu0) * 1e7) / sum.delivered) / 10 : undefined,
      generatorCpuCores: cores(got.reduce((a, r) => a + r.cpuSeconds, 0)),
    };
  }

  /** Closes every connection and stops the workers. */
  async close(): Promise<void> {
    for (const l of this.links) l.send({ type: "close" });
    await Promise.all(this.links.map((l) => l.stop()));
    this.links = [];
  }
}
