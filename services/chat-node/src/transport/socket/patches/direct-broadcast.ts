/**
 * Broadcasts written straight to each recipient's TCP socket.
 *
 * Socket.IO encodes a broadcast once (and its adapter even builds the WebSocket frame once), but
 * then walks five layers per recipient: the Socket.IO client, Engine.IO's socket (a packet object,
 * its write buffer, `flush`, `drain` events), the WebSocket transport, ws's sender, and a write
 * callback per frame that walks them back. With ten recipients per message that walk is most of
 * the JavaScript a broadcast costs. Here the frame (header and payload in one buffer) is written to
 * the recipient's `net.Socket` directly whenever that is indistinguishable on the wire from what
 * Engine.IO would have done:
 *
 * - the Engine.IO socket is open and holds no packets of its own (so nothing queued before this
 *   frame can be overtaken; what Engine.IO already handed to ws is in the TCP stream already);
 * - its transport is the WebSocket one without per-message compression;
 * - ws's sender is idle (not compressing, not waiting for a Blob) and its socket writable.
 *
 * Any other socket (long-polling, mid-upgrade, a write buffered by Engine.IO) takes Socket.IO's own
 * path with the same pre-encoded packet, as before. Outgoing listeners (`onAnyOutgoing`, which
 * counts the fan-out metric) still run for every recipient. Broadcasts with acknowledgements
 * (`broadcastWithAck`) are untouched.
 *
 * The patch is on socket.io-adapter's in-memory `Adapter.prototype.broadcast`, which is also the
 * local delivery of the Redis adapters (their `broadcast` and their handling of other nodes'
 * broadcasts call it through `super`); `broadcast-chain.ts` installs it there. It relies on the internals named above; the tests in
 * `direct-broadcast.test.ts` fail if those move.
 */
import type { Socket as TcpSocket } from "node:net";
import type { Adapter, BroadcastOptions } from "socket.io-adapter";
import { useDirectBroadcast } from "./broadcast-chain.ts";

/** Socket.IO's packet as the adapter receives it. */
interface Packet {
  nsp?: string;
  [key: string]: unknown;
}

interface WsSocket {
  readyState: number;
  _sender?: { _state?: number; _queue?: unknown[] };
  _socket?: TcpSocket;
}
interface EngineConn {
  readyState: string;
  writeBuffer: unknown[];
  transport: { name: string; perMessageDeflate?: unknown; socket?: WsSocket };
}
interface Recipient {
  conn: EngineConn;
  client: { writeToEngine(packets: unknown[], opts: unknown): void };
  notifyOutgoingListeners?: (packet: Packet) => void;
}
interface AdapterInternals {
  nsp: { name: string };
  encoder: { encode(packet: Packet): unknown[] };
  apply(opts: BroadcastOptions, fn: (socket: Recipient) => void): void;
}

const WS_OPEN = 1;
const SENDER_IDLE = 0;

let directWrites = 0;

/** Frames written past Engine.IO since the process started (the `chat_broadcast_direct_writes_total` metric). */
export function directWriteCount(): number {
  return directWrites;
}

/** The recipient's TCP socket when a frame written to it now would leave exactly as Engine.IO would send it. */
function directSocket(conn: EngineConn): TcpSocket | undefined {
  if (conn.readyState !== "open" || conn.writeBuffer.length !== 0) return undefined;
  const transport = conn.transport;
  if (transport.name !== "websocket" || transport.perMessageDeflate) return undefined;
  const ws = transport.socket;
  if (!ws || ws.readyState !== WS_OPEN) return undefined;
  const sender = ws._sender;
  if (!sender || sender._state !== SENDER_IDLE || sender._queue?.length !== 0) return undefined;
  const tcp = ws._socket;
  return tcp && tcp.writable && !tcp.destroyed ? tcp : undefined;
}

/** An unmasked, final WebSocket text frame (RFC 6455 §5.2) carrying `payload`. */
function textFrame(payload: Buffer): Buffer {
  const n = payload.length;
  const header = n < 126 ? 2 : n < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + n);
  frame[0] = 0x81;
  if (n < 126) frame[1] = n;
  else if (n < 65_536) {
    frame[1] = 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(n), 2);
  }
  payload.copy(frame, header);
  return frame;
}

/** The direct path over Socket.IO's own `broadcast` (`original`), as `broadcast-chain.ts` composes it. */
export function directBroadcast(original: Adapter["broadcast"]): Adapter["broadcast"] {
  return function broadcast(this: Adapter, packet: Packet, opts: BroadcastOptions): void {
    const flags = opts.flags ?? {};
    // A volatile packet is dropped for a socket whose transport is busy: Socket.IO's own rule.
    if (flags.volatile) {
      original.call(this, packet, opts);
      return;
    }
    const self = this as unknown as AdapterInternals;
    packet.nsp = self.nsp.name;
    // Encoded once for every recipient and either path.
    const encoded = self.encoder.encode(packet);
    // "4" is Engine.IO's message packet type, as in Socket.IO's own pre-encoded frame; a binary
    // packet (several parts) has no single frame and always takes Socket.IO's path.
    const payload = encoded.length === 1 && typeof encoded[0] === "string" ? Buffer.from(`4${encoded[0]}`) : undefined;
    const frame = payload && textFrame(payload);
    let packetOpts: Record<string, unknown> | undefined;
    self.apply(opts, (socket) => {
      socket.notifyOutgoingListeners?.(packet);
      const tcp = frame && directSocket(socket.conn);
      if (tcp) {
        tcp.write(frame);
        directWrites++;
        return;
      }
      packetOpts ??= {
        preEncoded: true,
        compress: flags.compress,
        ...(frame && payload ? { wsPreEncodedFrame: [frame.subarray(0, frame.length - payload.length), payload] } : {}),
      };
      socket.client.writeToEngine(encoded, packetOpts);
    });
  };
}

/** Installs the direct path once per process (idempotent). */
export function installDirectBroadcast(): void {
  useDirectBroadcast(directBroadcast);
}
