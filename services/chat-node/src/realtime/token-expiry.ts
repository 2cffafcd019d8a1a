/**
 * A socket lives as long as its token.
 *
 * A token is checked at the handshake; its `exp` (kept as `socket.data.expiresAt`) is honoured for
 * the rest of the connection too: an event on a socket whose token has expired is refused
 * UNAUTHORIZED (handlers.ts), and once a second every socket past its expiry has its transport
 * closed. A transport close, unlike a server-side `disconnect()`, makes socket.io-client reconnect:
 * a client whose `auth` is a function hands over a fresh token and carries on (catching up by
 * `seq`); one that still holds the expired token gets `connect_error` UNAUTHORIZED, and stops.
 */
import type { Server, Socket } from "socket.io";

/** How often sockets are checked for an expired token. */
export const TOKEN_EXPIRY_SWEEP_MS = 1000;

/** True when the socket's token carried an `exp` that has passed. */
export function tokenExpired(socket: Socket, now = Date.now()): boolean {
  const expiresAt = (socket.data as { expiresAt?: number }).expiresAt;
  return expiresAt !== undefined && now >= expiresAt;
}

/** Closes the transport of every socket of `io` whose token has expired, each second; returns the function that stops it. */
export function watchTokenExpiry(io: Server, onExpired: (info: { socketId: string; userId: unknown }) => void): () => void {
  const timer = setInterval(() => {
    const now = Date.now();
    for (const socket of io.of("/").sockets.values()) {
      if (!tokenExpired(socket, now)) continue;
      onExpired({ socketId: socket.id, userId: socket.data.userId });
      socket.conn.close();
    }
  }, TOKEN_EXPIRY_SWEEP_MS);
  timer.unref();
  return () => clearInterval(timer);
}
