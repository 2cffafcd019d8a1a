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
import { connectionOpen, cutNow, outgoingBytes } from "../patches/index.ts";

/**
 * The check (for the socket sweep) that cuts a socket holding more than `maxBytes`; none when
 * `maxBytes` is 0 (no bound).
 */
export function slowConsumerCheck(maxBytes: number, onCut: (info: { socketId: string; userId: unknown; bytes: number }) => void): SocketCheck | undefined {
  if (maxBytes <= 0) return undefined;
  return (socket) => {
    if (!connectionOpen(socket)) return;
    const bytes = outgoingBytes(socket);
    if (bytes <= maxBytes) return;
    onCut({ socketId: socket.id, userId: socket.data.userId, bytes });
    cutNow(socket);
  };
}
