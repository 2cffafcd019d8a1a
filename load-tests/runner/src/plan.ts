/**
 * What a load run talks to and who does what: users, their tokens, their rooms. The same plan
 * drives the three wire flavours:
 *   chat  the project: JWT in the handshake, conversations created over REST, acks on every event
 *   seed  the seed document's server: same events, no auth, no REST, `senderId` in the payload, no acks
 *   raw   the floor: JSON commands over bare WebSockets
 */
import { mintToken } from "./jwt.ts";
import type { Conversation } from "@chat/protocol";

export type Target = "chat" | "seed" | "raw";
export const TARGETS: readonly Target[] = ["chat", "seed", "raw"];

export interface PlanUser {
  id: string;
  token: string;
  /** Index into Plan.rooms, or -1 when the user joins nothing (idle-connection runs). */
  room: number;
}

export interface Plan {
  target: Target;
  url: string;
  users: PlanUser[];
  /** Room (conversation) ids. */
  rooms: string[];
  /** Sockets per room: every message sent to room r is expected `roomSizes[r]` times. */
  roomSizes: number[];
}

export interface PlanOptions {
  target: Target;
  url: string;
  users: number;
  /** 0: nobody joins a room. */
  rooms: number;
  secret: string;
  /** Distinguishes this run's users and rooms from earlier runs against the same server. */
  runId?: string;
}

/** Users `i` join room `i % rooms`; for `chat` the conversations are created over REST first. */
export async function buildPlan(o: PlanOptions): Promise<Plan> {
  const runId = o.runId ?? Date.now().toString(36);
  const users: PlanUser[] = [];
  for (let i = 0; i < o.users; i++) {
    const id = `lt-${runId}-u${i}`;
    users.push({ id, token: o.target === "chat" ? mintToken(id, o.secret, 24 * 3600) : "", room: o.rooms > 0 ? i % o.rooms : -1 });
  }
  const roomSizes = new Array<number>(o.rooms).fill(0);
  for (const u of users) if (u.room >= 0) roomSizes[u.room] = (roomSizes[u.room] ?? 0) + 1;
  let rooms: string[] = [];
  if (o.target === "chat") {
    rooms = await createConversations(o.url, users, o.rooms);
  } else {
    for (let r = 0; r < o.rooms; r++) rooms.push(`lt-${runId}-room${r}`);
  }
  return { target: o.target, url: o.url, users, rooms, roomSizes };
}

async function createConversations(url: string, users: PlanUser[], count: number): Promise<string[]> {
  const members: string[][] = Array.from({ length: count }, () => []);
  for (const u of users) if (u.room >= 0) members[u.room]?.push(u.id);
  const ids: string[] = new Array<string>(count);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const r = next++;
      if (r >= count) return;
      const group = members[r] ?? [];
      const owner = users.find((u) => u.id === group[0]);
      if (!owner) throw new Error(`room ${r} has no member`);
      const res = await fetch(`${url}/conversations`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${owner.token}` },
        body: JSON.stringify({ members: group, title: `load ${r}` }),
      }).catch((e: unknown) => {
        // fetch says only "fetch failed"; the reason (ECONNREFUSED, ENOTFOUND, …) is in its cause.
        const cause = e instanceof Error && e.cause instanceof Error ? e.cause.message : "";
        throw new Error(`POST ${url}/conversations failed: ${e instanceof Error ? e.message : String(e)}${cause ? ` (${cause})` : ""}`, { cause: e });
      });
      if (res.status !== 201) throw new Error(`POST ${url}/conversations answered ${res.status}: ${await res.text()}`);
      ids[r] = ((await res.json()) as Conversation).id;
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, count) }, worker));
  return ids;
}
