/**
 * One load-generating connection: Socket.IO through the shared framing module (`sio.js`) over the
 * `ws` package, or bare JSON over `ws` for the raw floor. Deliveries of `newMessage` are read on a
 * fast path (the text field is sliced out of the frame, not JSON-parsed) so that the generator, which
 * shares the machine with the server, spends as little CPU as possible per delivery.
 */
import WebSocket from "ws";
import { ClientEvent, ServerEvent, type JoinAck, type SendAck } from "@chat/protocol";
import { createSioClient, socketUrl, type SioClient } from "../../k6/lib/sio.js";
import type { Target } from "./plan.ts";

export interface ConnHandlers {
  /** The text of a delivered message (the `message` field), once per delivery. */
  onDelivery(text: string): void;
  /** The connection ended without close() being called. */
  onDrop(reason: string): void;
}

export interface Conn {
  join(room: string): Promise<void>;
  /** Sends `text` to `room`; `done(errorCode?)` runs on the ack (chat) or at once (seed, raw). */
  send(room: string, text: string, senderId: string, clientMessageId: string, done: (error?: string) => void): void;
  close(): void;
}

const NEW_MESSAGE_PREFIX = `42["${ServerEvent.newMessage}",`;
const SIO_FIELD = '"message":"';
const RAW_FIELD = '"msg":"';

/** The string value of `field` in a JSON text, when it holds no escapes (ours never do). */
function sliceField(frame: string, field: string): string | undefined {
  const at = frame.indexOf(field);
  if (at < 0) return undefined;
  const start = at + field.length;
  const end = frame.indexOf('"', start);
  return end < 0 ? undefined : frame.slice(start, end);
}

/** Opens and connects one socket; rejects on connect_error, close or `timeoutMs`. */
export function openConn(target: Target, url: string, token: string, h: ConnHandlers, timeoutMs = 15_000): Promise<Conn> {
  return target === "raw" ? openRaw(url, h, timeoutMs) : openSio(target, url, token, h, timeoutMs);
}

function openSio(target: Target, url: string, token: string, h: ConnHandlers, timeoutMs: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(socketUrl(url), { perMessageDeflate: false });
    let settled = false;
    let closing = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.terminate();
      reject(new Error(why));
    };
    const timer = setTimeout(() => fail("connect timeout"), timeoutMs);
    const client: SioClient = createSioClient(ws, {
      auth: target === "chat" ? { token } : undefined,
      onConnect: () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(conn);
      },
      onConnectError: (message) => fail(`connect_error: ${message}`),
    });
    const withAcks = target === "chat";
    const conn: Conn = {
      join(room) {
        if (!withAcks) {
          client.emit(ClientEvent.joinConversation, { conversationId: room });
          return Promise.resolve();
        }
        return new Promise((res, rej) => {
          client.emit(ClientEvent.joinConversation, { conversationId: room }, (args) => {
            const a = args[0] as JoinAck | undefined;
            if (a?.ok) res();
            else rej(new Error(`join refused: ${a && !a.ok ? a.error.code : "no answer"}`));
          });
        });
      },
      send(room, text, senderId, clientMessageId, done) {
        try {
          if (!withAcks) {
            client.emit(ClientEvent.sendMessage, { conversationId: room, senderId, message: text });
            done();
            return;
          }
          client.emit(ClientEvent.sendMessage, { conversationId: room, message: text, clientMessageId }, (args) => {
            const a = args[0] as SendAck | undefined;
            done(a?.ok ? undefined : a ? a.error.code : "NO_ACK");
          });
        } catch {
          // sio.js refuses to emit on a closed transport (and leaves no ack pending).
          done("NOT_CONNECTED");
        }
      },
      close() {
        closing = true;
        client.close();
      },
    };
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (isBinary) return;
      const frame = data.toString();
      if (frame.startsWith(NEW_MESSAGE_PREFIX)) {
        const text = sliceField(frame, SIO_FIELD);
        if (text !== undefined) {
          h.onDelivery(text);
          return;
        }
      }
      client.feed(frame);
    });
    ws.on("error", (e) => fail(`ws error: ${e.message}`));
    ws.on("close", (code) => {
      if (!settled) fail(`closed before connect (${code})`);
      else if (!closing) h.onDrop(`closed ${code}`);
    });
  });
}

function openRaw(url: string, h: ConnHandlers, timeoutMs: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, "ws"), { perMessageDeflate: false });
    let settled = false;
    let closing = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      ws.terminate();
      reject(new Error("connect timeout"));
    }, timeoutMs);
    const conn: Conn = {
      join(room) {
        ws.send(JSON.stringify({ t: "join", room }));
        return Promise.resolve();
      },
      send(room, text, _senderId, _cmid, done) {
        ws.send(JSON.stringify({ t: "send", room, msg: text }));
        done();
      },
      close() {
        closing = true;
        ws.close();
      },
    };
    ws.on("open", () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(conn);
    });
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (isBinary) return;
      const text = sliceField(data.toString(), RAW_FIELD);
      if (text !== undefined) h.onDelivery(text);
    });
    ws.on("error", (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(e);
    });
    ws.on("close", (code) => {
      if (settled && !closing) h.onDrop(`closed ${code}`);
    });
  });
}
