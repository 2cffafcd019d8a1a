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
import type { Socket } from "socket.io";
import type { SocketCheck } from "./socket-sweep.ts";

/** True when the socket's token carried an `exp` that has passed. */
export function tokenExpired(socket: Socket, now = Date.now()): boolean {
  const expiresAt = (socket.data as { expiresAt?: number }).expiresAt;
  return expiresAt !== undefined && now >= expiresAt;
}

/** The check (for the socket sweep) that closes the transport of a socket whose token has expired. */
export function tokenExpiryCheck(onExpired: (info: { socketId: string; userId: unknown }) => void): SocketCheck {
  return (socket, now) => {
    if (socket.conn.readyState !== "open" || !tokenExpired(socket, now)) return;
    onExpired({ socketId: socket.id, userId: socket.data.userId });
    socket.conn.close();
  };
}
