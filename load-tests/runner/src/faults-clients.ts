/**
 * The two kinds of client `pnpm bench:faults` puts through the faults, both real socket.io-client
 * connections through nginx:
 *
 * - SDK-like: the project's SDK (`@chat/client`, as the web page uses it): reconnects, re-joins with
 *   `sinceSeq`, fills holes by `after=`, retries every send with its `clientMessageId` (by socket,
 *   or by REST while disconnected) until acknowledged.
 * - seed-like: what a client written from the seed document does: `io(url)`, `joinConversation`
 *   on every connect (no `sinceSeq`, no acknowledgement), and `newMessage` shown as it comes. It
 *   never asks for what it missed, so what it holds is exactly what the cluster delivered to it.
 *
 * Both record their reconnections (disconnect to connect) for the report.
 */
import { io, type Socket } from "socket.io-client";
import { ChatClient } from "@chat/client";
import type { MessageData } from "@chat/protocol";
import { newClientMessageId } from "@chat/protocol/ids";

/** Reconnection times (ms) and how many reconnections are still waiting for their connect. */
export class Reconnects {
  readonly times: number[] = [];
  private readonly down = new Map<object, number>();

  watch(socket: Socket): void {
    socket.on("disconnect", () => this.down.set(socket, Date.now()));
    socket.on("connect", () => {
      const t = this.down.get(socket);
      if (t === undefined) return;
      this.down.delete(socket);
      this.times.push(Date.now() - t);
    });
  }

  /** Sockets disconnected and not connected again (yet). */
  pending(): number {
    return this.down.size;
  }
}

export interface SentRecord {
  clientMessageId: string;
  conversationId: string;
  senderId: string;
  /** The stored message, once acknowledged. */
  acked?: MessageData;
  /** Why it finally failed (the SDK gave up after sendTimeoutMs, or a refusal). */
  failed?: string;
}

const SOCKET_OPTIONS = {
  // engine.io-client keeps nginx's sticky cookie in Node only with withCredentials, as a browser does.
  withCredentials: true,
  forceNew: true,
} as const;

export class SdkMember {
  readonly client: ChatClient;
  readonly userId: string;
  readonly conversationId: string;

  private constructor(client: ChatClient, userId: string, conversationId: string) {
    this.client = client;
    this.userId = userId;
    this.conversationId = conversationId;
  }

  /** Connects through `url`, joins (history page, then the room), resolves once joined live. */
  static async open(url: string, token: string, userId: string, conversationId: string, reconnects: Reconnects): Promise<SdkMember> {
    const client = new ChatClient({ url, token, socketOptions: SOCKET_OPTIONS, maxMessages: Number.POSITIVE_INFINITY });
    client.on("error", () => undefined); // transport errors are retried by the SDK itself; the report counts outcomes
    reconnects.watch(client.socket as unknown as Socket);
    const m = new SdkMember(client, userId, conversationId);
    try {
      await waitConnected(client.socket as unknown as Socket, 15_000, userId);
      await client.join(conversationId);
    } catch (err) {
      client.close();
      throw err;
    }
    return m;
  }

  /** Sends one message; the record is filled when the SDK's retries end. */
  send(record: SentRecord, text: string): Promise<void> {
    return this.client.send(this.conversationId, text, { clientMessageId: record.clientMessageId }).then(
      (m) => void (record.acked = m),
      (err: unknown) => void (record.failed = err instanceof Error ? err.message : String(err)),
    );
  }

  /** The seqs the SDK holds for its conversation. */
  seqs(): Set<number> {
    return new Set(this.client.messages(this.conversationId).map((m) => m.seq));
  }

  close(): void {
    this.client.close();
  }
}

export class SeedMember {
  readonly socket: Socket;
  readonly userId: string;
  readonly conversationId: string;
  /** Seq of every newMessage received for its conversation, once each. */
  readonly seqs = new Set<number>();
  /** newMessage deliveries of a seq already held. */
  repeats = 0;

  private constructor(socket: Socket, userId: string, conversationId: string) {
    this.socket = socket;
    this.userId = userId;
    this.conversationId = conversationId;
    socket.on("connect", () => socket.emit("joinConversation", { conversationId }));
    socket.on("newMessage", (m: MessageData) => {
      if (m.conversationId !== conversationId) return;
      if (this.seqs.has(m.seq)) this.repeats++;
      else this.seqs.add(m.seq);
    });
  }

  static async open(url: string, token: string, userId: string, conversationId: string, reconnects: Reconnects): Promise<SeedMember> {
    const socket = io(url, { auth: { token }, ...SOCKET_OPTIONS });
    reconnects.watch(socket);
    const m = new SeedMember(socket, userId, conversationId);
    try {
      await waitConnected(socket, 15_000, userId);
    } catch (err) {
      socket.close();
      throw err;
    }
    return m;
  }

  close(): void {
    this.socket.close();
  }
}

function waitConnected(socket: Socket, timeoutMs: number, who: string): Promise<void> {
  if (socket.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${who} did not connect within ${timeoutMs} ms`)), timeoutMs);
    socket.once("connect", () => {
      clearTimeout(t);
      resolve();
    });
  });
}

export function newRecord(conversationId: string, senderId: string): SentRecord {
  return { clientMessageId: newClientMessageId(), conversationId, senderId };
}
