/**
 * Write coalescing for one socket. A send answers its sender twice in the same turn of the event
 * loop (its own `newMessage`, then the acknowledgement), and every WebSocket frame is one `writev`
 * system call, which the profile shows as the node's largest cost. Corking the TCP socket until
 * the turn ends sends both frames in one call.
 *
 * Corking alone is not enough: Engine.IO's WebSocket transport hands ws one batch of packets at a
 * time and holds the next ones in its own buffer until the previous batch's write callback, which
 * a corked socket only calls after uncorking. So before uncorking, whatever Engine.IO holds for
 * the socket is handed to ws too (ws itself accepts any number of sends in flight; the transport's
 * `writable` flag only paces Engine.IO's batches, and each batch still gets its own drain, in order).
 *
 * Engine.IO's and ws's internals are reached here (`conn.writeBuffer`, `conn.flush()`,
 * `transport.writable`, `transport.socket._socket`); when that shape is not there (long-polling,
 * another version), nothing is corked and nothing changes but the number of system calls.
 */
import type { Socket } from "socket.io";

interface Corkable {
  cork(): void;
  uncork(): void;
  writableCorked: number;
}

interface EngineSocket {
  readyState: string;
  writeBuffer?: unknown[];
  flush?: () => void;
  transport?: { name?: string; writable?: boolean; socket?: { _socket?: Corkable } };
}

const corked = new Map<Corkable, EngineSocket>();
let scheduled = false;

function tcpOf(conn: EngineSocket): Corkable | undefined {
  const transport = conn.transport;
  const tcp = transport?.name === "websocket" ? transport.socket?._socket : undefined;
  return tcp && typeof tcp.cork === "function" && typeof tcp.uncork === "function" ? tcp : undefined;
}

/** Hands Engine.IO's held packets to ws while the TCP socket is still corked. */
function flushHeld(conn: EngineSocket): void {
  const transport = conn.transport;
  if (!transport || transport.writable !== false || !conn.writeBuffer?.length || conn.readyState !== "open" || typeof conn.flush !== "function") return;
  transport.writable = true;
  conn.flush();
}

function flush(): void {
  scheduled = false;
  for (const [tcp, conn] of corked) {
    if (tcp.writableCorked === 0) continue;
    flushHeld(conn);
    tcp.uncork();
  }
  corked.clear();
}

/** Holds the socket's writes until the end of this turn of the event loop. */
export function corkUntilTurnEnds(socket: Socket): void {
  const conn = socket.conn as unknown as EngineSocket;
  const tcp = tcpOf(conn);
  if (!tcp || corked.has(tcp)) return;
  tcp.cork();
  corked.set(tcp, conn);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
}
