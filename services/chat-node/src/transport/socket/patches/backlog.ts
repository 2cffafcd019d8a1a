/**
 * A socket's outgoing backlog, read from Engine.IO's and ws's internals (neither exposes it):
 * Engine.IO's `writeBuffer` (packets not yet handed to the transport) and, for a WebSocket, the
 * TCP socket under ws (`_socket.writableLength`, what the kernel has not taken). And the cut that
 * does not queue behind it: ws's `terminate()`, no closing handshake. Used by the slow-consumer
 * policy (`policies/slow-consumers.ts`); checked against the versions in `PATCHED_UPSTREAM`.
 */
import type { Socket } from "socket.io";

interface EngineConn {
  readyState: string;
  writeBuffer: { data?: unknown }[];
  transport: { name: string; socket?: { _socket?: { writableLength: number }; terminate?: () => void } };
  close(discard?: boolean): void;
}

const connOf = (socket: Socket) => socket.conn as unknown as EngineConn;

/** True while the socket's Engine.IO connection is open. */
export function connectionOpen(socket: Socket): boolean {
  return connOf(socket).readyState === "open";
}

/** Bytes waiting to be sent to this socket: the TCP socket's queue and Engine.IO's own buffer. */
export function outgoingBytes(socket: Socket): number {
  const conn = connOf(socket);
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
export function cutNow(socket: Socket): void {
  const conn = connOf(socket);
  const ws = conn.transport.name === "websocket" ? conn.transport.socket : undefined;
  if (typeof ws?.terminate === "function") ws.terminate();
  else conn.close(true);
}
