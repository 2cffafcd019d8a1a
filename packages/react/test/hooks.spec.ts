/**
 * The hooks in jsdom against a real node (test-kit starts one): what a component renders is what
 * the node stored, in `seq` order, once each, including what it missed while disconnected.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { act, renderHook, waitFor } from "@testing-library/react";
import { createElement, type ReactNode } from "react";
import { createChatClient, MemoryOutboxStorage, type ChatClient } from "@chat/client";
import { api, closeAllSockets, connectUser, emitAck, mintToken, startNode, stopAll, type NodeHandle } from "@chat/test-kit";
import { startProxy, type TcpProxy } from "../../client/test/proxy.ts";
import { ChatProvider, useConnection, useConversation, usePresence, useTyping } from "../src/index.ts";

let node: NodeHandle;
let proxy: TcpProxy;
const clients: ChatClient[] = [];

beforeAll(async () => {
  // A long typing window: an isTyping:false seen here comes from stopTyping, not the timer.
  node = await startNode({ RATE_LIMIT_DISABLED: "1", TYPING_TIMEOUT_MS: "20000" });
  proxy = await startProxy(node.port);
});

afterAll(async () => {
  for (const c of clients) c.close();
  closeAllSockets();
  await proxy?.close();
  await stopAll();
});

async function clientFor(userId: string, url = node.url, pageSize = 50): Promise<ChatClient> {
  const client = createChatClient({
    url,
    token: await mintToken(userId),
    pageSize,
    // jsdom replaces AbortSignal with its own, which Node's fetch refuses ("Expected signal to be an
    // instance of AbortSignal"); a browser has no such split (the Playwright test runs the real one).
    fetch: (input, init) => fetch(input, { ...init, signal: undefined }),
    outbox: new MemoryOutboxStorage(),
    socketOptions: { transports: ["websocket"], reconnectionDelay: 100, reconnectionDelayMax: 300 },
  });
  clients.push(client);
  return client;
}

const wrapperOf = (client: ChatClient) => ({ children }: { children?: ReactNode }) => createElement(ChatProvider, { client }, children);

async function conversationWithMessages(n: number): Promise<{ id: string; bob: ReturnType<typeof api> }> {
  const bob = api(node.url, await mintToken("bob"));
  const conv = (await bob.post<{ id: string }>("/conversations", { members: ["alice"] })).body;
  for (let i = 1; i <= n; i++) expect((await bob.post(`/conversations/${conv.id}/messages`, { message: `m${i}` })).status).toBe(201);
  return { id: conv.id, bob };
}

describe("useConnection and useConversation", () => {
  it("shows history in seq order, pages back, and adds live messages once", async () => {
    const { id, bob } = await conversationWithMessages(5);
    const alice = await clientFor("alice", node.url, 3);
    const { result } = renderHook(() => ({ conn: useConnection(), conv: useConversation(id) }), { wrapper: wrapperOf(alice) });
    await waitFor(() => expect(result.current.conn.state).toBe("connected"), { timeout: 20_000 });
    await waitFor(() => expect(result.current.conv.loading).toBe(false), { timeout: 20_000 });
    expect(result.current.conv.messages.map((m) => m.message)).toEqual(["m3", "m4", "m5"]);
    expect(result.current.conv.hasOlder).toBe(true);
    await act(() => result.current.conv.loadOlder());
    expect(result.current.conv.messages.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5]);

    await bob.post(`/conversations/${id}/messages`, { message: "live", clientMessageId: "bob-live-1" });
    await bob.post(`/conversations/${id}/messages`, { message: "live", clientMessageId: "bob-live-1" }); // a repeat: no new message
    await waitFor(() => expect(result.current.conv.messages.at(-1)?.message).toBe("live"), { timeout: 20_000 });
    let sent: unknown;
    await act(async () => {
      sent = await result.current.conv.send("from alice");
    });
    expect(sent).toMatchObject({ message: "from alice", senderId: "alice", seq: 7 });
    await waitFor(() => expect(result.current.conv.messages.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]), { timeout: 20_000 });
    expect(result.current.conv.outbox).toEqual([]);
  });

  it("catches up on what it missed while disconnected", async () => {
    const { id, bob } = await conversationWithMessages(2);
    const alice = await clientFor("alice", proxy.url);
    const { result } = renderHook(() => ({ conn: useConnection(), conv: useConversation(id) }), { wrapper: wrapperOf(alice) });
    await waitFor(() => expect(result.current.conv.messages.length).toBe(2), { timeout: 20_000 });
    await waitFor(() => expect(result.current.conn.state).toBe("connected"), { timeout: 20_000 });
    proxy.block();
    await waitFor(() => expect(result.current.conn.state).toBe("reconnecting"), { timeout: 20_000 });
    await bob.post(`/conversations/${id}/messages`, { message: "while away 1" });
    await bob.post(`/conversations/${id}/messages`, { message: "while away 2" });
    proxy.unblock();
    await waitFor(() => expect(result.current.conn.state).toBe("connected"), { timeout: 20_000 });
    await waitFor(() => expect(result.current.conv.messages.map((m) => m.seq)).toEqual([1, 2, 3, 4]), { timeout: 20_000 });
    expect(new Set(result.current.conv.messages.map((m) => m.id)).size).toBe(4);
  });
});

describe("useTyping and usePresence", () => {
  it("shows who types and who is online, and tells the others when we type", async () => {
    const { id } = await conversationWithMessages(0);
    const alice = await clientFor("alice");
    const { result } = renderHook(() => ({ conv: useConversation(id), typing: useTyping(id), presence: usePresence(id) }), { wrapper: wrapperOf(alice) });
    await waitFor(() => expect(result.current.conv.loading).toBe(false), { timeout: 20_000 });
    await waitFor(() => expect(result.current.presence.online).toContain("alice"), { timeout: 20_000 });

    const bob = await connectUser(node.url, "bob");
    const bobSees: { userId: string; isTyping: boolean }[] = [];
    bob.on("typing", (e) => bobSees.push(e));
    expect((await emitAck<{ ok: boolean }>(bob, "joinConversation", { conversationId: id })).ok).toBe(true);
    await waitFor(() => expect(result.current.presence.online.sort()).toEqual(["alice", "bob"]), { timeout: 20_000 });

    bob.emit("typing", { conversationId: id });
    await waitFor(() => expect(result.current.typing.typing).toEqual(["bob"]), { timeout: 20_000 });
    bob.emit("stopTyping", { conversationId: id });
    await waitFor(() => expect(result.current.typing.typing).toEqual([]), { timeout: 20_000 });

    act(() => {
      for (const v of ["h", "he", "hel", "hell", "hello"]) result.current.typing.onInput(v);
    });
    await waitFor(() => expect(bobSees).toContainEqual({ conversationId: id, userId: "alice", isTyping: true }), { timeout: 20_000 });
    act(() => result.current.typing.onInput(""));
    await waitFor(() => expect(bobSees.at(-1)).toEqual({ conversationId: id, userId: "alice", isTyping: false }), { timeout: 20_000 });
    expect(bobSees.filter((e) => e.isTyping).length).toBe(1);

    bob.disconnect();
    await waitFor(() => expect(result.current.presence.online).toEqual(["alice"]), { timeout: 20_000 });
  });
});
