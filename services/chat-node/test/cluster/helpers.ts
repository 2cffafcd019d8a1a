/**
 * The cluster fault tests' moves: place a client on a chosen node *through nginx* (by the sticky
 * cookie), a chat member that reconnects and closes gaps by `seq` as the contract tells clients to,
 * and a sender that retries unacknowledged sends with the same clientMessageId.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { io } from "socket.io-client";
import type { JoinAck, MessageData, PresenceEvent, SendAck, TypingEvent } from "@chat/protocol";
import { after, before } from "node:test";
import { api, mintToken, stopAll, type ChatSocket } from "@chat/test-kit";
import { startCluster, type Cluster } from "../../../../infra/cluster/cluster.ts";

export const CLUSTER_ENV = {
  JWT_SECRET: "test-secret-0123456789abcdef",
  LOG_LEVEL: "warn",
  TYPING_TIMEOUT_MS: "400",
  SHUTDOWN_TIMEOUT_MS: "5000",
  PRESENCE_TTL_MS: "2000",
  RATE_LIMIT_DISABLED: "1",
};

/** A sticky cookie value that nginx hashes to `nodeId`, found by asking /healthz through nginx. */
export async function cookieFor(lbUrl: string, nodeId: string): Promise<string> {
  // A node just restarted may not answer yet: keep asking a while.
  const deadline = Date.now() + 20_000;
  const seen = new Map<string, number>();
  for (let i = 0; Date.now() < deadline; i++) {
    const key = randomUUID().replace(/-/g, "");
    const res = await fetch(`${lbUrl}/healthz`, { headers: { cookie: `chat_sticky=${key}` } });
    const body = (await res.json().catch(() => ({}))) as { nodeId?: string };
    if (body.nodeId === nodeId) return `chat_sticky=${key}`;
    const who = `${res.status} ${body.nodeId ?? "?"}`;
    seen.set(who, (seen.get(who) ?? 0) + 1);
    if (i % 50 === 49) await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`no sticky key found for ${nodeId}; nginx answered: ${[...seen].map(([k, n]) => `${k} x${n}`).join(", ")}`);
}

/** Creates a conversation through nginx and returns its id. */
export async function createConversation(lbUrl: string, owner: string, members: string[]): Promise<string> {
  const res = await api(lbUrl, await mintToken(owner)).post<{ id: string }>("/conversations", { members, title: "cluster test" });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.id;
}

/** Every message of a conversation from history, paging with `after` through nginx. */
export async function history(lbUrl: string, userId: string, conversationId: string): Promise<MessageData[]> {
  const client = api(lbUrl, await mintToken(userId));
  const all: MessageData[] = [];
  for (let after = 0, i = 0; i < 10_000; i++) {
    const res = await client.get<{ messages: MessageData[]; hasMore: boolean }>(`/conversations/${conversationId}/messages?after=${after}&limit=200`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    all.push(...res.body.messages);
    if (res.body.messages.length === 0) break;
    after = res.body.messages.at(-1)!.seq;
    if (!res.body.hasMore) break;
  }
  return all;
}

/**
 * A member of one conversation, as the contract's client: on every (re)connect it joins with
 * `sinceSeq` of the last contiguous message it holds, and a `newMessage` past a gap triggers the
 * same catch-up. Messages are kept by seq; two different ids for one seq is a cluster bug.
 */
export class Member {
  readonly bySeq = new Map<number, MessageData>();
  readonly presence: PresenceEvent[] = [];
  readonly typing: TypingEvent[] = [];
  /** Deliveries of an id already held (live + missed overlap); allowed, counted for the report. */
  duplicates = 0;
  conflicts: string[] = [];
  connects = 0;
  readonly socket: ChatSocket;
  readonly userId: string;
  readonly conversationId: string;
  /** Resolves after the first successful join. */
  readonly joined: Promise<void>;
  private markJoined: () => void = () => {};
  private catchingUp = false;
  private pendingCatchUp = false;

  private constructor(socket: ChatSocket, userId: string, conversationId: string) {
    this.socket = socket;
    this.userId = userId;
    this.conversationId = conversationId;
    this.joined = new Promise((r) => (this.markJoined = r));
    socket.on("newMessage", (m) => {
      if (m.conversationId !== conversationId) return;
      const gap = m.seq > this.contiguous() + 1;
      this.add(m);
      if (gap) void this.catchUp();
    });
    socket.on("presence", (p) => this.presence.push(p));
    socket.on("typing", (t) => this.typing.push(t));
    socket.on("connect", () => {
      this.connects++;
      void this.catchUp();
    });
  }

  static async connect(
    lbUrl: string,
    userId: string,
    conversationId: string,
    o: { cookie?: string; reconnection?: boolean; transports?: ("websocket" | "polling")[] } = {},
  ): Promise<Member> {
    const token = await mintToken(userId);
    const socket: ChatSocket = io(lbUrl, {
      auth: { token },
      transports: o.transports ?? ["websocket"],
      forceNew: true,
      reconnection: o.reconnection ?? true,
      // engine.io-client keeps cookies in Node only with withCredentials: the sticky cookie for long-polling.
      withCredentials: true,
      reconnectionDelay: 100,
      reconnectionDelayMax: 500,
      randomizationFactor: 0.2,
      ...(o.cookie ? { extraHeaders: { cookie: o.cookie } } : {}),
    });
    const member = new Member(socket, userId, conversationId);
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${userId} could not connect`)), 10_000);
        socket.once("connect", () => (clearTimeout(t), resolve()));
      });
      await Promise.race([member.joined, new Promise((_, reject) => setTimeout(() => reject(new Error(`${userId} could not join`)), 10_000).unref())]);
    } catch (err) {
      socket.disconnect(); // nobody else holds it: left open, it would reconnect forever and keep the test process alive
      throw err;
    }
    return member;
  }

  private add(m: MessageData): void {
    const held = this.bySeq.get(m.seq);
    if (!held) this.bySeq.set(m.seq, m);
    else if (held.id === m.id) this.duplicates++;
    else this.conflicts.push(`seq ${m.seq}: ${held.id} and ${m.id}`);
  }

  /** The highest seq n such that 1..n are all held. */
  contiguous(): number {
    let n = 0;
    while (this.bySeq.has(n + 1)) n++;
    return n;
  }

  /** joinConversation { sinceSeq }, repeated while the answer says there is more. */
  async catchUp(): Promise<void> {
    if (this.catchingUp) {
      this.pendingCatchUp = true;
      return;
    }
    this.catchingUp = true;
    try {
      for (let round = 0; round < 1000; round++) {
        this.pendingCatchUp = false;
        let ack: JoinAck;
        try {
          ack = (await this.socket.timeout(3000).emitWithAck("joinConversation", { conversationId: this.conversationId, sinceSeq: this.contiguous() })) as JoinAck;
        } catch {
          return; // disconnected or timed out: the next connect catches up
        }
        if (!ack.ok) return;
        for (const m of ack.missed ?? []) this.add(m);
        this.markJoined();
        if (!ack.hasMore && !this.pendingCatchUp && this.contiguous() >= ack.lastSeq) return;
      }
    } finally {
      this.catchingUp = false;
    }
  }

  close(): void {
    this.socket.disconnect();
  }
}

export interface Sent {
  clientMessageId: string;
  message: MessageData;
}

/**
 * Sends `count` messages one every `intervalMs`, each retried with its clientMessageId until
 * acknowledged (a send lost with its node is retried after the reconnect: idempotent).
 */
export async function sendSteadily(m: Member, count: number, intervalMs: number, tag: string): Promise<{ acked: Sent[]; retries: number }> {
  const acked: Sent[] = [];
  let retries = 0;
  const one = async (i: number) => {
    const clientMessageId = `${tag}-${i}`;
    for (let attempt = 0; attempt < 200; attempt++) {
      if (!m.socket.connected) await new Promise((r) => m.socket.once("connect", () => r(null)));
      try {
        const ack = (await m.socket.timeout(3000).emitWithAck("sendMessage", { conversationId: m.conversationId, message: `${tag} #${i}`, clientMessageId })) as SendAck;
        if (ack.ok) {
          acked.push({ clientMessageId, message: ack.message });
          return;
        }
      } catch {
        /* no ack: the node died or is draining; retry */
      }
      retries++;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${clientMessageId} never acknowledged`);
  };
  const running: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    running.push(one(i));
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  await Promise.all(running);
  return { acked, retries };
}

/** Asserts the member holds exactly the acknowledged messages' seqs 1..N, each once, matching by id. */
export function assertExactlyOnce(member: Member, acked: MessageData[], lastSeq: number): void {
  assert.deepEqual(member.conflicts, [], `${member.userId}: two messages with one seq`);
  assert.equal(member.contiguous(), lastSeq, `${member.userId} holds 1..${member.contiguous()} of 1..${lastSeq}`);
  assert.equal(member.bySeq.size, lastSeq, `${member.userId}: nothing beyond ${lastSeq}`);
  for (const a of acked) assert.equal(member.bySeq.get(a.seq)?.id, a.id, `${member.userId} lacks acknowledged seq ${a.seq}`);
}

/** Asserts history is 1..N with no gap or repeat and holds every acknowledged message once. */
export function assertHistory(all: MessageData[], acked: MessageData[]): void {
  assert.deepEqual(all.map((m) => m.seq), all.map((_, i) => i + 1), "history seq is 1..N without gap or repeat");
  const ids = new Set(all.map((m) => m.id));
  assert.equal(ids.size, all.length, "no id twice in history");
  for (const a of acked) assert.equal(all[a.seq - 1]?.id, a.id, `acknowledged seq ${a.seq} is in history`);
  const cmids = all.filter((m) => m.clientMessageId).map((m) => `${m.senderId}/${m.clientMessageId}`);
  assert.equal(new Set(cmids).size, cmids.length, "no clientMessageId stored twice");
}

/**
 * A cluster for one describe(): started before its tests; after them, its members are closed and
 * every process is stopped. Tests read `fx.cluster` and push the members they open to `fx.members`.
 */
export interface ClusterFixture {
  readonly cluster: Cluster;
  /** Every member connected in the suite, closed after it. */
  members: Member[];
  /** Connects `userId` through nginx, pinned to `nodeId` by its sticky cookie, joined to the conversation; closed after the suite. */
  join(userId: string, conversationId: string, nodeId: string): Promise<Member>;
}

export function clusterPerSuite(opts: Parameters<typeof startCluster>[0]): ClusterFixture {
  let cluster: Cluster | undefined;
  const members: Member[] = [];
  before(async () => {
    cluster = await startCluster(opts);
  });
  after(async () => {
    for (const m of members) m.close();
    await cluster?.stop();
    await stopAll();
  });
  const started = (): Cluster => {
    if (!cluster) throw new Error("the cluster is not started yet");
    return cluster;
  };
  return {
    get cluster() {
      return started();
    },
    members,
    async join(userId, conversationId, nodeId) {
      const url = started().url;
      const m = await Member.connect(url, userId, conversationId, { cookie: await cookieFor(url, nodeId) });
      // Handed to the suite as soon as it exists, so that a failure later still closes it.
      members.push(m);
      return m;
    },
  };
}

/** Runs one redis-cli command against a loopback Redis; its output ("" when the server is away). */
export function redisCli(port: number, ...args: string[]): string {
  try {
    return execFileSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args], { timeout: 5000, stdio: "pipe" }).toString();
  } catch {
    return "";
  }
}

/** The connection names a Redis server lists (CLIENT LIST), to see which nodes talk to which shard. */
export function redisClientNames(port: number): string[] {
  return redisCli(port, "client", "list").split("\n").flatMap((line) => /\bname=(\S+)/.exec(line)?.[1] ?? []);
}

/**
 * New GET requests through nginx, as fast as they come back, until stopped: their statuses (599:
 * no answer at all). A request that fails before any answer is sent once more at once, as browsers
 * and HTTP clients do for an idempotent request whose kept-alive connection closed under it (an
 * nginx reload retires its old workers' idle connections); a second failure counts.
 */
export function probeRequests(lbUrl: string, loops: { what: string; path: string; headers: Record<string, string> }[], intervalMs = 20) {
  const statuses: { what: string; status: number }[] = [];
  let running = true;
  const once = async (path: string, headers: Record<string, string>) => {
    const res = await fetch(lbUrl + path, { headers });
    await res.arrayBuffer();
    return res.status;
  };
  const loop = async ({ what, path, headers }: (typeof loops)[number]) => {
    while (running) {
      try {
        statuses.push({ what, status: await once(path, headers).catch(() => once(path, headers)) });
      } catch (err) {
        statuses.push({ what: `${what}: ${String(err)}`, status: 599 });
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  };
  const done = Promise.all(loops.map(loop));
  return {
    statuses,
    /** Stops the loops; the 5xx (and 599) answers. */
    async stop() {
      running = false;
      await done;
      return statuses.filter((s) => s.status >= 500);
    },
  };
}
