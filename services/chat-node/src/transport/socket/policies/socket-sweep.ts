/**
 * The node's per-socket bounds that no event triggers (a token that expires, a client that stops
 * reading) are checked by one walk over the node's sockets each second, shared by every check.
 */
import type { Server, Socket } from "socket.io";

/** How often every socket is checked. */
export const SOCKET_SWEEP_MS = 1000;

/** One bound, checked for one socket; `now` is the sweep's Date.now(). */
export type SocketCheck = (socket: Socket, now: number) => void;

/** Runs `checks` on every socket of `io` each second; returns the function that stops it. */
export function sweepSockets(io: Server, checks: readonly SocketCheck[]): () => void {
  if (checks.length === 0) return () => {};
  const timer = setInterval(() => {
    const now = Date.now();
    for (const socket of io.of("/").sockets.values()) for (const check of checks) check(socket, now);
  }, SOCKET_SWEEP_MS);
  timer.unref();
  return () => clearInterval(timer);
}
