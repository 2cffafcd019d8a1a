/**
 * One fault scenario of `pnpm bench:faults` against a running local cluster (infra/cluster), through
 * nginx: fresh conversations, SDK-like and seed-like members (faults-clients.ts), a steady send load
 * from the SDK-like ones, the fault in the middle of it, then the measurements the report prints:
 * what was sent, acknowledged and stored (history is the truth), what each client ends up holding,
 * how long reconnections took, what nginx answered meanwhile (its access and error logs), and how
 * the connections are spread over the nodes afterwards. The fault tests run short versions.
 */
import type { MessageData } from "@chat/protocol";
import type { Cluster } from "../../../infra/cluster/cluster.ts";
import { Reconnects, SdkMember, SeedMember, newRecord, type SentRecord } from "./faults-clients.ts";
import { mintToken } from "./jwt.ts";

export interface FaultParams {
  /** JWT_SECRET of the cluster's nodes. */
  secret: string;
  conversations: number;
  sdkPerConversation: number;
  seedPerConversation: number;
  /** Sends per second over the whole cluster, spread over the SDK-like members. */
  rate: number;
  /** Load before the fault. */
  beforeMs: number;
  /** Load after the fault (and its repair) is over. */
  afterMs: number;
  /** Longest wait for the SDK-like members to hold everything stored, after the load. */
  settleMs: number;
}

export interface FaultContext {
  cluster: Cluster;
  log(line: string): void;
  /** Extra facts for the report (e.g. the rolling restart's steps). */
  note(key: string, value: unknown): void;
}

/** The figures for one scenario; absent means not a target there. */
export interface Targets {
  reconnectP99Ms?: number;
  nginx502?: number;
  seedGaps?: number;
  spread?: number;
}

export interface Scenario {
  id: string;
  title: string;
  targets: Targets;
  inject(ctx: FaultContext): Promise<void>;
}

export interface Latency {
  count: number;
  p50: number;
  p99: number;
  max: number;
  /** The five slowest, for the reader. */
  slowest: number[];
}

export interface KindResult {
  clients: number;
  /** Clients that do not hold every stored seq of their conversation at the end. */
  clientsWithGaps: number;
  /** (client, seq) pairs missing at the end. */
  missing: number;
  reconnects: Latency;
  /** Reconnections still not connected at the end. */
  stillDisconnected: number;
}

export interface NginxResult {
  requests: number;
  status502: number;
  status5xx: number;
  /** 5xx by kind of request: handshake (/socket.io/ without sid), session (with sid), rest. */
  byKind: Record<string, number>;
  /** The first few 5xx lines, for the reader. */
  samples: string[];
  noLiveUpstreams: number;
  /** Connects nginx found refused (a dead node) and passed on to the next node. */
  refusedConnects: number;
  /** Engine.IO requests of a session answered 400 (the session's node did not know its sid: the client opens a new one). */
  session400: number;
}

export interface ScenarioResult {
  id: string;
  title: string;
  targets: Targets;
  startedAt: string;
  faultMs: number;
  sent: number;
  acknowledged: number;
  failed: number;
  failures: string[];
  ackedLost: number;
  storedTwice: number;
  stored: number;
  storeSeqGaps: number;
  sdk: KindResult;
  seed: KindResult;
  nginx: NginxResult;
  connectionsAfter: Record<string, number>;
  notes: Record<string, unknown>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function latency(times: number[]): Latency {
  const s = [...times].sort((a, b) => a - b);
  const q = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]! : 0);
  return { count: s.length, p50: q(0.5), p99: q(0.99), max: s.at(-1) ?? 0, slowest: s.slice(-5).reverse() };
}

/** Runs `tasks` with at most `limit` at a time. */
async function pool<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await task(items[next++]!);
    }),
  );
}

async function eventually(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(200);
  }
}

/** Every message of a conversation, paging with `after`, from one node directly (not through nginx, whose log is measured). */
async function history(nodeUrl: string, token: string, conversationId: string): Promise<MessageData[]> {
  const all: MessageData[] = [];
  for (let after = 0, i = 0; i < 100_000; i++) {
    const res = await fetch(`${nodeUrl}/conversations/${conversationId}/messages?after=${after}&limit=200`, { headers: { authorization: `Bearer ${token}` } });
    if (res.status !== 200) throw new Error(`history of ${conversationId}: HTTP ${res.status} ${await res.text()}`);
    const page = (await res.json()) as { messages: MessageData[]; hasMore: boolean };
    all.push(...page.messages);
    if (page.messages.length === 0 || !page.hasMore) break;
    after = page.messages.at(-1)!.seq;
  }
  return all;
}

/** What nginx logged since the given byte offsets. */
function readNginx(cluster: Cluster, from: { access: number; error: number }): NginxResult {
  const access = cluster.nginx.accessLog().slice(from.access);
  const errors = cluster.nginx.errorLog().slice(from.error);
  const r: NginxResult = { requests: 0, status502: 0, status5xx: 0, byKind: {}, samples: [], noLiveUpstreams: 0, refusedConnects: 0, session400: 0 };
  for (const line of access.split("\n")) {
    const m = /"(\S+) (\S+) [^"]*" (\d{3}) /.exec(line);
    if (!m) continue;
    r.requests++;
    const status = Number(m[3]);
    const target = m[2]!;
    if (status === 400 && target.startsWith("/socket.io/") && /[?&]sid=/.test(target)) r.session400++;
    if (status < 500) continue;
    const kind = target.startsWith("/socket.io/") ? (/[?&]sid=/.test(target) ? "session" : "handshake") : "rest";
    r.status5xx++;
    if (status === 502) r.status502++;
    r.byKind[kind] = (r.byKind[kind] ?? 0) + 1;
    if (r.samples.length < 5) r.samples.push(line);
  }
  for (const line of errors.split("\n")) {
    if (line.includes("no live upstreams")) r.noLiveUpstreams++;
    if (/connect\(\) failed \(111/.test(line)) r.refusedConnects++;
  }
  return r;
}

function offsets(cluster: Cluster): { access: number; error: number } {
  return { access: cluster.nginx.accessLog().length, error: cluster.nginx.errorLog().length };
}

function kindResult(members: { seqs: Set<number>; conversationId: string }[], lastSeq: Map<string, number>, reconnects: Reconnects): KindResult {
  let clientsWithGaps = 0;
  let missing = 0;
  for (const m of members) {
    const last = lastSeq.get(m.conversationId) ?? 0;
    let held = 0;
    for (let s = 1; s <= last; s++) if (m.seqs.has(s)) held++;
    if (held < last) {
      clientsWithGaps++;
      missing += last - held;
    }
  }
  return { clients: members.length, clientsWithGaps, missing, reconnects: latency(reconnects.times), stillDisconnected: reconnects.pending() };
}

export async function runScenario(cluster: Cluster, scenario: Scenario, p: FaultParams, log: (line: string) => void = () => undefined): Promise<ScenarioResult> {
  const startedAt = new Date().toISOString();
  const tag = `${scenario.id}-${Date.now().toString(36)}`;
  const token = (user: string) => mintToken(user, p.secret);
  const notes: Record<string, unknown> = {};

  // Conversations and their members.
  const plan: { conversationId: string; sdkUsers: string[]; seedUsers: string[] }[] = [];
  for (let c = 0; c < p.conversations; c++) {
    const sdkUsers = Array.from({ length: p.sdkPerConversation }, (_, i) => `${tag}-c${c}-sdk${i}`);
    const seedUsers = Array.from({ length: p.seedPerConversation }, (_, i) => `${tag}-c${c}-seed${i}`);
    const res = await fetch(`${cluster.url}/conversations`, {
      method: "POST",
      headers: { authorization: `Bearer ${token(sdkUsers[0]!)}`, "content-type": "application/json" },
      body: JSON.stringify({ members: [...sdkUsers, ...seedUsers], title: `faults ${tag} ${c}` }),
    });
    if (res.status !== 201) throw new Error(`creating a conversation: HTTP ${res.status} ${await res.text()}`);
    plan.push({ conversationId: ((await res.json()) as { id: string }).id, sdkUsers, seedUsers });
  }
  const sdkReconnects = new Reconnects();
  const seedReconnects = new Reconnects();
  const sdk: SdkMember[] = [];
  const seed: SeedMember[] = [];
  const records: SentRecord[] = [];
  const sends: Promise<void>[] = [];
  const send = (m: SdkMember, text: string) => {
    const r = newRecord(m.conversationId, m.userId);
    records.push(r);
    sends.push(m.send(r, text));
  };

  try {
    const jobs = plan.flatMap((c) => [
      ...c.sdkUsers.map((u) => ({ kind: "sdk" as const, u, c: c.conversationId })),
      ...c.seedUsers.map((u) => ({ kind: "seed" as const, u, c: c.conversationId })),
    ]);
    await pool(jobs, 20, async (j) => {
      if (j.kind === "sdk") sdk.push(await SdkMember.open(cluster.url, token(j.u), j.u, j.c, sdkReconnects));
      else seed.push(await SeedMember.open(cluster.url, token(j.u), j.u, j.c, seedReconnects));
    });
    // One message per conversation: every member holds seq 1 before the load, so every seed-like member is known to be in its room.
    for (const c of plan) send(sdk.find((m) => m.conversationId === c.conversationId)!, "warm-up");
    await Promise.all(sends);
    const warm = await eventually(() => seed.every((m) => m.seqs.has(1)) && sdk.every((m) => m.seqs().has(1)), 15_000);
    if (!warm) log("  warning: not every member received the warm-up message");
    log(`  ${sdk.length} SDK-like and ${seed.length} seed-like clients joined ${plan.length} conversations; connections ${JSON.stringify(await cluster.connections())}`);

    // Steady load, round-robin over the SDK-like members.
    const logFrom = offsets(cluster);
    let running = true;
    let issued = 0;
    const t0 = Date.now();
    const loader = (async () => {
      while (running) {
        const due = Math.floor(((Date.now() - t0) / 1000) * p.rate);
        for (; issued < due; issued++) send(sdk[issued % sdk.length]!, `load ${issued}`);
        await sleep(10);
      }
    })();
    await sleep(p.beforeMs);
    const f0 = Date.now();
    log(`  fault: ${scenario.title}`);
    await scenario.inject({ cluster, log, note: (k, v) => (notes[k] = v) });
    const faultMs = Date.now() - f0;
    log(`  fault over after ${faultMs} ms; load goes on for ${p.afterMs} ms`);
    await sleep(p.afterMs);
    running = false;
    await loader;
    await Promise.all(sends);
    const nginx = readNginx(cluster, logFrom);

    // The store is the truth: what each member should hold is 1..lastSeq of its conversation.
    const reader = cluster.nodes.find((n) => n.running()) ?? cluster.nodes[0]!;
    const stores = new Map<string, MessageData[]>();
    const lastSeq = new Map<string, number>();
    const readStore = async () => {
      for (const c of plan) {
        const h = await history(reader.url, token(c.sdkUsers[0]!), c.conversationId);
        stores.set(c.conversationId, h);
        lastSeq.set(c.conversationId, h.reduce((mx, m) => Math.max(mx, m.seq), 0));
      }
    };
    await readStore();
    const settled = await eventually(() => sdk.every((m) => {
      const seqs = m.seqs();
      const last = lastSeq.get(m.conversationId) ?? 0;
      for (let s = 1; s <= last; s++) if (!seqs.has(s)) return false;
      return true;
    }), p.settleMs);
    if (!settled) log(`  warning: SDK-like members still miss messages after ${p.settleMs} ms`);
    // Live deliveries still on their way to seed-like members.
    await sleep(1000);
    await readStore();

    let ackedLost = 0;
    let storedTwice = 0;
    let stored = 0;
    let storeSeqGaps = 0;
    for (const c of plan) {
      const h = stores.get(c.conversationId)!;
      stored += h.length;
      const byId = new Map(h.map((m) => [m.id, m]));
      const seqs = new Set(h.map((m) => m.seq));
      for (let s = 1; s <= (lastSeq.get(c.conversationId) ?? 0); s++) if (!seqs.has(s)) storeSeqGaps++;
      const keys = new Map<string, number>();
      for (const m of h) if (m.clientMessageId) keys.set(`${m.senderId}/${m.clientMessageId}`, (keys.get(`${m.senderId}/${m.clientMessageId}`) ?? 0) + 1);
      for (const n of keys.values()) storedTwice += n - 1;
      for (const r of records) if (r.conversationId === c.conversationId && r.acked && byId.get(r.acked.id)?.seq !== r.acked.seq) ackedLost++;
    }
    const failures = [...new Set(records.filter((r) => r.failed).map((r) => r.failed!))].slice(0, 5);
    return {
      id: scenario.id,
      title: scenario.title,
      targets: scenario.targets,
      startedAt,
      faultMs,
      sent: records.length,
      acknowledged: records.filter((r) => r.acked).length,
      failed: records.filter((r) => r.failed).length,
      failures,
      ackedLost,
      storedTwice,
      stored,
      storeSeqGaps,
      sdk: kindResult(sdk.map((m) => ({ seqs: m.seqs(), conversationId: m.conversationId })), lastSeq, sdkReconnects),
      seed: kindResult(seed, lastSeq, seedReconnects),
      nginx,
      connectionsAfter: await cluster.connections(),
      notes,
    };
  } finally {
    for (const m of sdk) m.close();
    for (const m of seed) m.close();
    // The next scenario starts from an empty cluster.
    await eventually(async () => Object.values(await cluster.connections()).every((n) => n === 0), 10_000);
  }
}
