/**
 * Write coalescing for one socket. A send answers its sender twice in the same turn of the event
 * loop (its own `newMessage`, then the acknowledgement), and every WebSocket frame is one `writev`
 * system call, which the profile shows as the node's largest cost. Corking the TCP socket until
 * the turn ends sends both frames in one call.
 *
 * The TCP socket is reached through Engine.IO's and ws's internals (`transport.socket._socket`);
 * when that shape is not there (long-polling, another version), nothing is corked and nothing
 * changes but the number of system calls.
 */
import type { Socket } from "socket.io";

interface Corkable {
  cork(): void;
  uncork(): void;
  writableCorked: number;
}

function tcpOf(socket: Socket): Corkable | undefined {
  const transport = (socket.conn as unknown as { transport?: { name?: string; socket?: { _socket?: Corkable } } }).transport;
  const tcp = transport?.name === "websocket" ? transport.socket?._socket : undefined;
  return tcp && typeof tcp.cork === "function" && typeof tcp.uncork === "function" ? tcp : undefined;
}

const corked = new Set<Corkable>();
let scheduled = false;

function flush(): void {
  scheduled = false;
  for (const tcp of corked) if (tcp.writableCorked > 0) tcp.uncork();
  corked.clear();
}

/** Holds the socket's writes until the end of this turn of the event loop. */
export function corkUntilTurnEnds(socket: Socket): void {
  const tcp = tcpOf(socket);
  if (!tcp || corked.has(tcp)) return;
  tcp.cork();
  corked.add(tcp);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
}
