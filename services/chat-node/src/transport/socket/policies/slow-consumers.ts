/**
 * A bound on what the node holds for a client that does not read.
 *
 * Neither Socket.IO nor Engine.IO limits a socket's outgoing backlog: once the kernel's buffers are
 * full, every frame for a client that stopped reading waits in the node's memory (in the TCP
 * socket's user-space queue, or as packets in Engine.IO's write buffer), and only the heartbeat
 * ends it, after up to pingInterval + pingTimeout (45 s by default) of whatever its rooms carry.
 * With many such clients in busy rooms that is unbounded memory.
 *
 * Here, once a second, every socket's backlog is measured; a socket holding more than
 * `SOCKET_MAX_OUTGOING_BYTES` is cut (its WebSocket terminated at once, without the closing
 * handshake that would queue behind the backlog). Nothing is lost by it: every message was stored
 * before it was broadcast, and the client reconnects and catches up by `seq` like after any drop.
 */
import type { SocketCheck } from "./socket-sweep.ts";

interface EngineConn {
  readyState: string;
  writeBuffer: { data?: unknown }[];
  transport: { name: string; socket?: { _socket?: { writableLength: number }; terminate?: () => void } };
  close(discard?: boolean): void;
}

/** Bytes waiting to be sent on this Engine.IO connection: the TCP socket's queue and Engine.IO's own buffer. */
export function outgoingBytes(conn: EngineConn): number {
  const tcp = conn.transport.name === "websocket" ? conn.transport.socket?._socket : undefined;
  let bytes = tcp?.writableLength ?? 0;
  for (const packet of conn.writeBuffer) {
    const data = packet.data;
    if (typeof data === "string") bytes += data.length;
    else if (ArrayBuffer.isView(data)) bytes += data.byteLength;
  }
  return bytes;
}

/** Cuts the connection now; a WebSocket without the closing handshake, which would wait behind the backlog. */
function cut(conn: EngineConn): void {
  const ws = conn.transport.name === "websocket" ? conn.transport.socket : undefined;
  if (typeof ws?.terminate === "function") ws.terminate();
  else conn.close(true);
}

/**
 * The check (for the socket sweep) that cuts a socket holding more than `maxBytes`; none when
 * `maxBytes` is 0 (no bound).
 */
export function slowConsumerCheck(maxBytes: number, onCut: (info: { socketId: string; userId: unknown; bytes: number }) => void): SocketCheck | undefined {
  if (maxBytes <= 0) return undefined;
  return (socket) => {
    const conn = socket.conn as unknown as EngineConn;
    if (conn.readyState !== "open") return;
    const bytes = outgoingBytes(conn);
    if (bytes <= maxBytes) return;
    onCut({ socketId: socket.id, userId: socket.data.userId, bytes });
    cut(conn);
  };
}
