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
import type { Server } from "socket.io";

interface EngineConn {
  readyState: string;
  writeBuffer: { data?: unknown }[];
  transport: { name: string; socket?: { _socket?: { writableLength: number }; terminate?: () => void } };
  close(discard?: boolean): void;
}

/** How often the backlogs are measured. */
export const SLOW_CONSUMER_SWEEP_MS = 1000;

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
 * Measures every socket of `io` each second and cuts those holding more than `maxBytes`
 * (0: never). Returns the function that stops watching.
 */
export function watchSlowConsumers(io: Server, maxBytes: number, onCut: (info: { socketId: string; userId: unknown; bytes: number }) => void): () => void {
  if (maxBytes <= 0) return () => {};
  const timer = setInterval(() => {
    for (const socket of io.of("/").sockets.values()) {
      const conn = socket.conn as unknown as EngineConn;
      if (conn.readyState !== "open") continue;
      const bytes = outgoingBytes(conn);
      if (bytes <= maxBytes) continue;
      onCut({ socketId: socket.id, userId: socket.data.userId, bytes });
      cut(conn);
    }
  }, SLOW_CONSUMER_SWEEP_MS);
  timer.unref();
  return () => clearInterval(timer);
}
