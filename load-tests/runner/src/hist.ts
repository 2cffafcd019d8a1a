/**
 * A fixed-bucket latency histogram, cheap to record into and to merge across worker processes:
 * 10 µs buckets below 10 ms, 100 µs up to 1 s, 1 ms up to 60 s (anything slower lands in the last).
 */
const FINE = 1000; // 0..10 ms by 10 µs
const MID = 9900; // 10..1000 ms by 0.1 ms
const COARSE = 59_000; // 1..60 s by 1 ms
export const BUCKETS = FINE + MID + COARSE;

function bucketOf(ms: number): number {
  if (ms < 0) return 0;
  if (ms < 10) return Math.floor(ms * 100);
  if (ms < 1000) return FINE + Math.floor((ms - 10) * 10);
  return Math.min(BUCKETS - 1, FINE + MID + Math.floor(ms - 1000));
}

function valueOf(bucket: number): number {
  if (bucket < FINE) return (bucket + 1) / 100;
  if (bucket < FINE + MID) return 10 + (bucket - FINE + 1) / 10;
  return 1000 + (bucket - FINE - MID + 1);
}

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Sparse form for IPC: [bucket, count] pairs plus the exact max and sum. */
export interface SparseHistogram {
  pairs: [number, number][];
  max: number;
  sum: number;
}

export class Histogram {
  readonly counts = new Uint32Array(BUCKETS);
  count = 0;
  max = 0;
  sum = 0;

  record(ms: number): void {
    const i = bucketOf(ms);
    this.counts[i] = (this.counts[i] ?? 0) + 1;
    this.count++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  toSparse(): SparseHistogram {
    const pairs: [number, number][] = [];
    for (let i = 0; i < BUCKETS; i++) {
      const c = this.counts[i] ?? 0;
      if (c !== 0) pairs.push([i, c]);
    }
    return { pairs, max: this.max, sum: this.sum };
  }

  addSparse(s: SparseHistogram): void {
    for (const [i, c] of s.pairs) {
      this.counts[i] = (this.counts[i] ?? 0) + c;
      this.count += c;
    }
    this.sum += s.sum;
    if (s.max > this.max) this.max = s.max;
  }

  /** The upper bound of the bucket holding the q-quantile (0..1), never above the exact max. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i] ?? 0;
      if (seen >= rank) return Math.min(valueOf(i), this.max);
    }
    return this.max;
  }

  summary(): LatencySummary {
    const r = (v: number) => Math.round(v * 100) / 100;
    return {
      count: this.count,
      p50: r(this.quantile(0.5)),
      p90: r(this.quantile(0.9)),
      p99: r(this.quantile(0.99)),
      max: r(this.max),
      mean: r(this.count ? this.sum / this.count : 0),
    };
  }
}
