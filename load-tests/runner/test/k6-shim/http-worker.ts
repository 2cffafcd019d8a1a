/**
 * The worker behind the shim's synchronous k6/http: k6's `http.get()` blocks its VU, which Node's
 * fetch cannot, so the VU's thread posts the requests here and waits on a SharedArrayBuffer
 * (Atomics.wait) until this thread has written the answers into it.
 */
import { parentPort } from "node:worker_threads";

export interface WireRequest {
  method: string;
  url: string;
  body?: string | null;
  headers?: Record<string, string>;
  timeoutMs: number;
}

export interface WireResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  durationMs: number;
  error?: string;
}

/** `retry-after` → `Retry-After`, as Go's net/http (so k6) presents header names. */
function canonical(name: string): string {
  return name
    .split("-")
    .map((p) => (p ? p[0]!.toUpperCase() + p.slice(1).toLowerCase() : p))
    .join("-");
}

async function one(r: WireRequest): Promise<WireResponse> {
  const t0 = performance.now();
  try {
    const res = await fetch(r.url, { method: r.method, headers: r.headers, body: r.body ?? undefined, signal: AbortSignal.timeout(r.timeoutMs) });
    const body = await res.text();
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => (headers[canonical(k)] = v));
    return { status: res.status, headers, body, durationMs: performance.now() - t0 };
  } catch (e) {
    return { status: 0, headers: {}, body: "", durationMs: performance.now() - t0, error: String(e) };
  }
}

parentPort?.on("message", async (m: { sab: SharedArrayBuffer; reqs: WireRequest[] }) => {
  const flag = new Int32Array(m.sab, 0, 2);
  const bytes = new Uint8Array(m.sab, 8);
  let out = new TextEncoder().encode(JSON.stringify(await Promise.all(m.reqs.map(one))));
  if (out.length > bytes.length) out = new TextEncoder().encode(JSON.stringify({ tooLarge: out.length }));
  bytes.set(out);
  Atomics.store(flag, 1, out.length);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
});
