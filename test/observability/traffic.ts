/**
 * Drives a node through every path that touches a metric: REST conversations, joins, sends,
 * duplicates, typing, stop-typing, leaves, malformed payloads, unknown events, refused handshakes
 * and disconnects. Returns every id it used so tests can prove no metric label carries one.
 */
import { randomUUID } from "node:crypto";
import { api, connectUser, emitAck, mintToken, type ChatSocket } from "@chat/test-kit";

export interface TrafficIds {
  users: string[];
  conversations: string[];
  sockets: string[];
  messages: string[];
  clientMessageIds: string[];
  /** Event names the client made up, which must fold into `unknown`. */
  unknownEvents: string[];
}

export interface TrafficResult extends TrafficIds {
  /** Sends the node acknowledged as newly stored (duplicates excluded). */
  stored: number;
}

type Ack = { ok: boolean; message?: { id: string; conversationId: string }; error?: { code: string } };

/**
 * `users` users in `conversations` conversations (each with 3 members, round robin), every member
 * joined, `sendsPerConversation` sends in each, one repeated clientMessageId, typing, bad payloads.
 */
export async function driveTraffic(
  url: string,
  opts: { users: number; conversations: number; sendsPerConversation?: number; tag?: string },
): Promise<TrafficResult> {
  const tag = opts.tag ?? randomUUID().slice(0, 8);
  const sends = opts.sendsPerConversation ?? 2;
  const ids: TrafficResult = { users: [], conversations: [], sockets: [], messages: [], clientMessageIds: [], unknownEvents: [], stored: 0 };

  const users = Array.from({ length: opts.users }, (_, i) => `obs-${tag}-user-${i}-${randomUUID().slice(0, 6)}`);
  ids.users.push(...users);
  const tokens = new Map<string, string>();
  for (const u of users) tokens.set(u, await mintToken(u));
  const sockets = new Map<string, ChatSocket>();
  for (const u of users) {
    const s = await connectUser(url, u, { token: tokens.get(u)! });
    sockets.set(u, s);
    if (s.id) ids.sockets.push(s.id);
  }

  // A refused handshake (wrong signature) and a dropped connection: connection metrics by reason.
  await connectUser(url, `obs-${tag}-intruder`, { token: await mintToken(`obs-${tag}-intruder`, { secret: "not-the-secret-of-this-node" }) }).then(
    () => {
      throw new Error("a token signed with another secret was accepted");
    },
    () => undefined,
  );
  ids.users.push(`obs-${tag}-intruder`);

  const convs: { id: string; members: string[] }[] = [];
  for (let c = 0; c < opts.conversations; c++) {
    const members = [0, 1, 2].map((k) => users[(c + k) % users.length]!);
    const uniq = [...new Set(members)];
    const res = await api(url, tokens.get(uniq[0]!)).post<{ id: string }>("/conversations", { members: uniq, title: `obs ${tag} ${c}` });
    if (res.status !== 201) throw new Error(`POST /conversations answered ${res.status}: ${JSON.stringify(res.body)}`);
    convs.push({ id: res.body.id, members: uniq });
    ids.conversations.push(res.body.id);
  }

  for (const conv of convs) {
    for (const m of conv.members) {
      const ack = await emitAck<Ack>(sockets.get(m)!, "joinConversation", { conversationId: conv.id });
      if (!ack.ok) throw new Error(`join refused: ${JSON.stringify(ack)}`);
    }
  }

  for (const conv of convs) {
    const sender = sockets.get(conv.members[0]!)!;
    await emitAck(sender, "typing", { conversationId: conv.id });
    await emitAck(sender, "typing", { conversationId: conv.id });
    await emitAck(sender, "stopTyping", { conversationId: conv.id });
    for (let k = 0; k < sends; k++) {
      const clientMessageId = `obs-${tag}-cmid-${randomUUID().slice(0, 12)}`;
      ids.clientMessageIds.push(clientMessageId);
      const member = sockets.get(conv.members[k % conv.members.length]!)!;
      const ack = await emitAck<Ack>(member, "sendMessage", { conversationId: conv.id, message: `hello ${k} from ${tag}`, clientMessageId });
      if (ack.ok && ack.message) {
        ids.messages.push(ack.message.id);
        ids.stored++;
      } else if (ack.error?.code !== "RATE_LIMITED") throw new Error(`send refused: ${JSON.stringify(ack)}`);
      if (k === 0) {
        // The same clientMessageId again: answered with the original, counted as a duplicate.
        await emitAck(member, "sendMessage", { conversationId: conv.id, message: `hello ${k} from ${tag}`, clientMessageId });
      }
    }
  }

  // Errors every way a client can cause them, each carrying fresh unbounded values.
  const someone = sockets.get(users[0]!)!;
  const outsider = users.find((u) => !convs[0]!.members.includes(u));
  for (const conv of convs.slice(0, 5)) {
    await emitAck(someone, "sendMessage", { conversationId: conv.id, message: "" });
    await emitAck(someone, "sendMessage", { conversationId: `obs-${tag}-missing-${randomUUID()}`, message: "to nowhere" });
    await emitAck(someone, "joinConversation", { conversationId: conv.id, extra: randomUUID() });
    await emitAck(someone, "typing", "not an object");
    if (outsider) await emitAck(sockets.get(outsider)!, "joinConversation", { conversationId: convs[0]!.id });
    const unknown = `obs-${tag}-event-${randomUUID().slice(0, 8)}`;
    ids.unknownEvents.push(unknown);
    someone.emit(unknown as "typing", { conversationId: conv.id });
  }
  await api(url).get("/conversations");
  await api(url, tokens.get(users[0]!)).get(`/conversations/obs-${tag}-missing-${randomUUID()}`);
  const rest = await api(url, tokens.get(convs[0]!.members[0]!)).post<{ id: string }>(`/conversations/${convs[0]!.id}/messages`, {
    message: "via REST",
    clientMessageId: `obs-${tag}-rest`,
  });
  if (rest.status === 201) {
    ids.messages.push(rest.body.id);
    ids.stored++;
  }
  ids.clientMessageIds.push(`obs-${tag}-rest`);

  for (const conv of convs.slice(0, 3)) await emitAck(sockets.get(conv.members[1]!)!, "leaveConversation", { conversationId: conv.id });
  for (const s of sockets.values()) s.disconnect();
  return ids;
}
