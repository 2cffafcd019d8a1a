/**
 * A load worker: holds a share of the plan's users, connects and joins them, then sends at its share
 * of the offered rate and counts what comes back. It runs in the parent process or in a forked
 * child (worker-main.ts); the parent talks to it only through messages, so both work the same.
 */
import { Histogram, type SparseHistogram } from "./hist.ts";
import { openConn, type Conn } from "./conn.ts";
import type { PlanUser, Target } from "./plan.ts";

export interface WorkerInit {
  type: "init";
  workerId: number;
  target: Target;
  url: string;
  users: PlanUser[];
  rooms: string[];
  roomSizes: number[];
  connectConcurrency: number;
}
export interface WorkerStep {
  type: "step";
  step: number;
  /** Messages per second this worker sends. */
  rate: number;
  durationMs: number;
}
export type ToWorker = WorkerInit | WorkerStep | { type: "report"; step: number } | { type: "close" };

export interface StepCounters {
  sent: number;
  expected: number;
  delivered: number;
  errors: number;
  errorCodes: Record<string, number>;
}
export type FromWorker =
  | { type: "ready"; workerId: number; connected: number; connectErrors: number; errorSamples: string[]; connectHist: SparseHistogram }
  | { type: "progress"; workerId: number; step: number; sending: boolean; counters: StepCounters; dropped: number }
  | { type: "report"; workerId: number; step: number; counters: StepCounters; latency: SparseHistogram; dropped: number; cpuSeconds: number }
  | { type: "closed"; workerId: number }
  | { type: "error"; workerId: number; message: string };

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes of one machine. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

interface StepState {
  counters: StepCounters;
  latency: Histogram;
  /** process.cpuUsage() when the step started, to report this worker's own CPU use. */
  cpuAtStart?: NodeJS.CpuUsage;
  /** Connections this step lost, fixed when it is reported (see droppedBefore). */
  dropped?: number;
}

export class LoadWorker {
  private init?: WorkerInit;
  private conns: (Conn | undefined)[] = [];
  private steps = new Map<number, StepState>();
  /** Connections lost since connecting (ended without close()). */
  private dropped = 0;
  /**
   * `dropped` when the last step was reported: a step's drops are those after the previous step's
   * report (for the first step, after connecting) up to its own, so that each step reports its own
   * and the steps add up to the total.
   */
  private droppedBefore = 0;
  private readonly post: (m: FromWorker) => void;

  constructor(post: (m: FromWorker) => void) {
    this.post = post;
  }

  async handle(m: ToWorker): Promise<void> {
    try {
      if (m.type === "init") await this.connectAll(m);
      else if (m.type === "step") await this.runStep(m);
      else if (m.type === "report") this.report(m.step);
      else if (m.type === "close") this.closeAll();
    } catch (e) {
      this.post({ type: "error", workerId: this.init?.workerId ?? -1, message: String(e instanceof Error ? e.stack : e) });
    }
  }

  private stepState(step: number): StepState {
    let s = this.steps.get(step);
    if (!s) {
      s = { counters: { sent: 0, expected: 0, delivered: 0, errors: 0, errorCodes: {} }, latency: new Histogram() };
      this.steps.set(step, s);
    }
    return s;
  }

  private onDelivery = (text: string): void => {
    // text: "s<step>|<send time in ms>|..."
    const bar = text.indexOf("|");
    if (text.charCodeAt(0) !== 115 || bar < 0) return;
    const step = Number(text.slice(1, bar));
    const bar2 = text.indexOf("|", bar + 1);
    const sentAt = Number(text.slice(bar + 1, bar2 < 0 ? undefined : bar2));
    const s = this.stepState(step);
    s.counters.delivered++;
    s.latency.record(nowMs() - sentAt);
  };

  private async connectAll(init: WorkerInit): Promise<void> {
    this.init = init;
    const connectHist = new Histogram();
    const errorSamples: string[] = [];
    let connectErrors = 0;
    let next = 0;
    this.conns = new Array<Conn | undefined>(init.users.length);
    const handlers = { onDelivery: this.onDelivery, onDrop: () => this.dropped++ };
    const one = async () => {
      for (;;) {
        const i = next++;
        if (i >= init.users.length) return;
        const u = init.users[i];
        if (!u) return;
        const t0 = nowMs();
        try {
          const c = await openConn(init.target, init.url, u.token, handlers);
          connectHist.record(nowMs() - t0);
          const room = u.room >= 0 ? init.rooms[u.room] : undefined;
          if (room !== undefined) await c.join(room);
          this.conns[i] = c;
        } catch (e) {
          connectErrors++;
          if (errorSamples.length < 5) errorSamples.push(String(e instanceof Error ? e.message : e));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, init.connectConcurrency) }, one));
    const connected = this.conns.filter(Boolean).length;
    this.post({ type: "ready", workerId: init.workerId, connected, connectErrors, errorSamples, connectHist: connectHist.toSparse() });
  }

  private async runStep(m: WorkerStep): Promise<void> {
    const init = this.init;
    if (!init) throw new Error("step before init");
    const s = this.stepState(m.step);
    s.cpuAtStart = process.cpuUsage();
    const c = s.counters;
    const senders = init.users.map((u, i) => ({ u, conn: this.conns[i] })).filter((x) => x.conn && x.u.room >= 0);
    const start = nowMs();
    let cursor = 0;
    let seq = 0;
    const sendOne = () => {
      const x = senders[cursor++ % senders.length];
      if (!x?.conn) return;
      const room = init.rooms[x.u.room] ?? "";
      const t = nowMs();
      c.sent++;
      c.expected += init.roomSizes[x.u.room] ?? 0;
      x.conn.send(room, `s${m.step}|${t.toFixed(3)}|w${init.workerId}`, x.u.id, `w${init.workerId}s${m.step}n${seq++}`, (err) => {
        if (err === undefined) return;
        c.errors++;
        c.errorCodes[err] = (c.errorCodes[err] ?? 0) + 1;
      });
    };
    const progress = (sending: boolean) =>
      this.post({ type: "progress", workerId: init.workerId, step: m.step, sending, counters: c, dropped: this.dropped - this.droppedBefore });
    if (senders.length > 0 && m.rate > 0) {
      const total = Math.round((m.rate * m.durationMs) / 1000);
      let lastProgress = start;
      await new Promise<void>((resolve) => {
        // Open loop: every tick sends what the schedule owes, whatever the server's pace.
        const tick = () => {
          const now = nowMs();
          const due = Math.min(total, Math.floor(((now - start) * m.rate) / 1000));
          while (c.sent < due) sendOne();
          if (now - lastProgress >= 250) {
            lastProgress = now;
            progress(true);
          }
          if (c.sent >= total) {
            clearInterval(timer);
            resolve();
          }
        };
        const timer = setInterval(tick, 5);
      });
    }
    progress(false);
    // Keep reporting while the parent waits for deliveries to drain.
    const until = nowMs() + 30_000;
    const drain = setInterval(() => {
      progress(false);
      if (nowMs() > until || this.reported.has(m.step)) clearInterval(drain);
    }, 250);
  }

  private reported = new Set<number>();

  private report(step: number): void {
    const s = this.stepState(step);
    this.reported.add(step);
    const cpu = process.cpuUsage(s.cpuAtStart);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    if (s.dropped === undefined) {
      s.dropped = this.dropped - this.droppedBefore;
      this.droppedBefore = this.dropped;
    }
    this.post({ type: "report", workerId: this.init?.workerId ?? -1, step, counters: s.counters, latency: s.latency.toSparse(), dropped: s.dropped, cpuSeconds });
  }

  private closeAll(): void {
    for (const c of this.conns) c?.close();
    this.conns = [];
    this.post({ type: "closed", workerId: this.init?.workerId ?? -1 });
  }
}
