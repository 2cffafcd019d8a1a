import { io, type Socket, type ManagerOptions, type SocketOptions } from "socket.io-client";
import type { ClientToServerEvents, ServerToClientEvents } from "@chat/protocol";
import { mintHs256Token } from "@chat/protocol/token";
import { TEST_SECRET } from "@chat/process-kit";

export type ChatSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** An HS256 token for `userId`, valid for `expiresInSec` (negative: already expired). */
export async function mintToken(userId: string, opts: { secret?: string; expiresInSec?: number } = {}): Promise<string> {
  return mintHs256Token(userId, opts.secret ?? TEST_SECRET, opts.expiresInSec ?? 3600);
}

const opened = new Set<Socket>();

/** A socket.io-client socket for `userId`, resolved once connected (rejects on connect_error). */
export async function connectUser(
  url: string,
  userId: string,
  opts: Partial<ManagerOptions & SocketOptions> & { token?: string } = {},
): Promise<ChatSocket> {
  const token = opts.token ?? (await mintToken(userId));
  const socket: ChatSocket = io(url, { auth: { token }, transports: ["websocket"], reconnection: false, forceNew: true, ...opts });
  opened.add(socket);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`connect timeout for ${userId}`)), 10_000);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once("connect_error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  return socket;
}

/** Closes every socket connectUser opened. */
export function closeAllSockets(): void {
  for (const s of opened) s.disconnect();
  opened.clear();
}

/** Emits with an acknowledgement and resolves to it (rejects after `timeoutMs`). */
export async function emitAck<T = unknown>(socket: Socket, event: string, payload: unknown, timeoutMs = 5000): Promise<T> {
  return socket.timeout(timeoutMs).emitWithAck(event, payload) as Promise<T>;
}

/** Resolves with the next `event` on `socket` that passes `filter`. */
export function waitForEvent<T = unknown>(socket: Socket, event: string, opts: { timeoutMs?: number; filter?: (v: T) => boolean } = {}): Promise<T> {
  const { timeoutMs = 5000, filter } = opts;
  return new Promise((resolve, reject) => {
    const onEvent = (v: T) => {
      if (filter && !filter(v)) return;
      cleanup();
      resolve(v);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out waiting for ${event}`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      socket.off(event, onEvent);
    };
    socket.on(event, onEvent);
  });
}

/** Collects every `event` on `socket` into an array, until the returned stop() is called. */
export function collect<T = unknown>(socket: Socket, event: string): { items: T[]; stop(): void } {
  const items: T[] = [];
  const on = (v: T) => items.push(v);
  socket.on(event, on);
  return { items, stop: () => socket.off(event, on) };
}

/** Waits `ms` milliseconds; used only to prove that something did NOT arrive. */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a truthy value or the timeout passes. */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 5000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await sleep(50);
  }
}

export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

/** A small REST client: `api(url, token).post("/conversations", {...})`. */
export function api(baseUrl: string, token?: string) {
  async function call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
    const h: Record<string, string> = { ...headers };
    if (token) h.authorization = `Bearer ${token}`;
    let payload: string | undefined;
    if (body !== undefined) {
      h["content-type"] ??= "application/json";
      payload = typeof body === "string" ? body : JSON.stringify(body);
    }
    const res = await fetch(baseUrl + path, { method, headers: h, body: payload });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: keep the text */
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  }
  return {
    get: <T = unknown>(p: string) => call<T>("GET", p),
    post: <T = unknown>(p: string, body?: unknown, headers?: Record<string, string>) => call<T>("POST", p, body, headers),
    call,
  };
}
