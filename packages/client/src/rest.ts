/**
 * The contract's REST calls (CONTRACT.md §2) over `fetch`, with the bearer token and the error body
 * mapped to ChatError. Used by the client for history, catch-up and the send fallback, and by the
 * page for conversations and presence.
 */
import type { Conversation, CreateConversationBody, ErrorBody, MessageData, MessagePage, ServerLimits } from "@chat/protocol";
import { ChatError } from "./errors.ts";

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface RestOptions {
  /** Origin of the node or load balancer, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  getToken: () => string;
  fetch?: FetchLike;
  /** Per-request deadline; a request that takes longer fails with TIMEOUT. Default 10000. */
  timeoutMs?: number;
}

export interface HistoryQuery {
  limit?: number;
  /** Page back: messages with `seq` below this one. */
  before?: number;
  /** Catch up: messages with `seq` above this one. */
  after?: number;
}

/** `POST /conversations/:id/messages`: the stored message, and whether it was a repeat (200). */
export interface PostedMessage {
  message: MessageData;
  duplicate: boolean;
}

export interface RestApi {
  createConversation(body: CreateConversationBody): Promise<Conversation>;
  listConversations(): Promise<Conversation[]>;
  getConversation(id: string): Promise<Conversation>;
  history(id: string, query?: HistoryQuery): Promise<MessagePage>;
  presence(id: string): Promise<{ online: string[] }>;
  postMessage(id: string, body: { message: string; clientMessageId?: string }): Promise<PostedMessage>;
  /** The node's limits (`GET /limits`): message length, typing window, id lengths, page sizes. */
  limits(): Promise<ServerLimits>;
}

const trimSlash = (url: string) => url.replace(/\/+$/, "");

async function call<T>(
  opts: { baseUrl: string; fetch?: FetchLike; timeoutMs?: number; token?: string },
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const doFetch: FetchLike = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const headers: Record<string, string> = { accept: "application/json" };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  let res: Response;
  try {
    res = await doFetch(trimSlash(opts.baseUrl) + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    });
  } catch (err) {
    const timedOut = err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");
    throw new ChatError(timedOut ? "TIMEOUT" : "NETWORK", `${method} ${path}: ${timedOut ? "timed out" : "network error"}`, { cause: err });
  }
  const text = await res.text().catch(() => "");
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const errBody = (parsed as { error?: ErrorBody } | undefined)?.error;
    const retryAfterHeader = Number(res.headers.get("retry-after"));
    const err = ChatError.fromBody(
      errBody ?? { code: res.status >= 500 ? "UNAVAILABLE" : "INTERNAL", message: `${method} ${path} answered ${res.status}` },
      res.status,
    );
    if (err.retryAfter === undefined && Number.isFinite(retryAfterHeader) && retryAfterHeader > 0) {
      throw new ChatError(err.code, err.message, { status: res.status, retryAfter: retryAfterHeader });
    }
    throw err;
  }
  return { status: res.status, body: parsed as T };
}

/** The REST calls of one signed-in user. */
export function createRestApi(opts: RestOptions): RestApi {
  const req = <T>(method: string, path: string, body?: unknown) =>
    call<T>({ baseUrl: opts.baseUrl, fetch: opts.fetch, timeoutMs: opts.timeoutMs, token: opts.getToken() }, method, path, body);
  const conv = (id: string) => `/conversations/${encodeURIComponent(id)}`;
  return {
    async createConversation(body) {
      return (await req<Conversation>("POST", "/conversations", body)).body;
    },
    async listConversations() {
      return (await req<{ conversations: Conversation[] }>("GET", "/conversations")).body.conversations;
    },
    async getConversation(id) {
      return (await req<Conversation>("GET", conv(id))).body;
    },
    async history(id, query = {}) {
      const params = new URLSearchParams();
      if (query.limit !== undefined) params.set("limit", String(query.limit));
      if (query.before !== undefined) params.set("before", String(query.before));
      if (query.after !== undefined) params.set("after", String(query.after));
      const qs = params.toString() ? `?${params.toString()}` : "";
      return (await req<MessagePage>("GET", `${conv(id)}/messages${qs}`)).body;
    },
    async presence(id) {
      return (await req<{ online: string[] }>("GET", `${conv(id)}/presence`)).body;
    },
    async postMessage(id, body) {
      const res = await req<MessageData>("POST", `${conv(id)}/messages`, body);
      return { message: res.body, duplicate: res.status === 200 };
    },
    async limits() {
      return (await req<ServerLimits>("GET", "/limits")).body;
    },
  };
}

/**
 * Asks a node for a development token (`POST /dev/token`), which exists only while the node runs
 * with DEV_INSECURE_TOKENS=1 (a local demo; never in production).
 */
export async function fetchDevToken(baseUrl: string, userId: string, fetchImpl?: FetchLike): Promise<string> {
  const res = await call<{ token: string }>({ baseUrl, fetch: fetchImpl }, "POST", "/dev/token", { userId });
  if (typeof res.body?.token !== "string") throw new ChatError("INTERNAL", "POST /dev/token answered without a token");
  return res.body.token;
}
