/**
 * Memory per idle socket, which is what scales: two references Socket.IO and Engine.IO keep for the
 * whole connection although nothing reads them after the handshake (Socket.IO's memory guide).
 * Both reach fields that are not part of the public API; `patches/index.ts` records the versions
 * they were checked against and `test/patches.test.ts` fails when those move.
 */
import { ServerResponse, type IncomingMessage } from "node:http";
import type { Socket } from "socket.io";

/**
 * Engine.IO answers a WebSocket upgrade through a stand-in response object that a `close` listener
 * on the TCP socket keeps for the whole connection, and that object keeps the upgrade request (its
 * headers, URL, parser leftovers: about 2 KB a socket). Engine.IO reads it only until it calls
 * `writeHead()` and hands the request to ws; from then on the reference is let go.
 * Installed with `io.engine.use(releaseUpgradeRequest)`.
 */
export function releaseUpgradeRequest(_req: IncomingMessage, res: unknown, next: (err?: unknown) => void): void {
  if (!(res instanceof ServerResponse) && typeof res === "object" && res !== null && "req" in res) {
    (res as unknown as { writeHead: unknown }).writeHead = writeHeadThenRelease;
  }
  next();
}
function writeHeadThenRelease(this: { req: unknown }, ...args: unknown[]): unknown {
  const proto = Object.getPrototypeOf(this) as { writeHead?: (...a: unknown[]) => unknown };
  const out = proto.writeHead?.apply(this, args);
  this.req = null;
  return out;
}

/**
 * Engine.IO keeps the handshake's IncomingMessage for the whole session (`conn.request`), and the
 * handshake keeps its headers and the token: after authentication nothing reads them.
 */
export function releaseHandshake(socket: Socket): void {
  (socket.conn as unknown as { request: unknown }).request = null;
  socket.handshake.headers = {};
  socket.handshake.auth = {};
  socket.handshake.query = {};
}
