/** Scenario set-up shared by the node's tests: a conversation with members and their joined sockets. */
import assert from "node:assert/strict";
import { api, connectUser, emitAck, mintToken, type ChatSocket } from "@chat/test-kit";
import type { Conversation, JoinAck, MessageData, MessagePage } from "@chat/protocol";

export async function createConversation(url: string, owner: string, members: string[], title = "test"): Promise<Conversation> {
  const res = await api(url, await mintToken(owner)).post<Conversation>("/conversations", { members, title });
  if (res.status !== 201) throw new Error(`create conversation: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Connects `userId` and joins the conversation; rejects unless the join is acknowledged ok. */
export async function joined(url: string, userId: string, conversationId: string, opts: Parameters<typeof connectUser>[2] = {}): Promise<ChatSocket> {
  const s = await connectUser(url, userId, opts);
  const ack = await emitAck<JoinAck>(s, "joinConversation", { conversationId });
  if (!ack.ok) throw new Error(`join failed: ${JSON.stringify(ack)}`);
  return s;
}

export async function history(url: string, userId: string, conversationId: string, query = ""): Promise<MessagePage> {
  const res = await api(url, await mintToken(userId)).get<MessagePage>(`/conversations/${conversationId}/messages${query}`);
  if (res.status !== 200) throw new Error(`history: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Every stored message of a conversation, oldest first, read page by page (at most 1,000 pages). */
export async function allMessages(url: string, userId: string, conversationId: string): Promise<MessageData[]> {
  const out: MessageData[] = [];
  for (let page = 0, after = 0; page < 1000; page++) {
    const p = await history(url, userId, conversationId, `?after=${after}&limit=200`);
    out.push(...p.messages);
    if (!p.hasMore) return out;
    after = p.messages.at(-1)!.seq;
  }
  throw new Error("too many pages");
}

/** The value of an unlabelled series (or the first series) of `name` on the node's /metrics. */
export async function metricValue(url: string, name: string): Promise<number> {
  const text = String((await api(url).get<string>("/metrics")).body);
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+(?:\\.\\d+)?)$`, "m").exec(text);
  assert.ok(m, `/metrics has ${name}`);
  return Number(m[1]);
}

/** The sum of every series of `name` on the node's /metrics (all label sets). */
export async function metricSum(url: string, name: string): Promise<number> {
  const text = String((await api(url).get<string>("/metrics")).body);
  const values = [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm"))].map((m) => Number(m[1]));
  assert.ok(values.length > 0, `/metrics has ${name}`);
  return values.reduce((a, b) => a + b, 0);
}
