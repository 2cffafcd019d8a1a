/**
 * While the node drains, new Engine.IO handshakes (a `/socket.io/` request without `sid`, by
 * polling or by WebSocket upgrade) are answered `503`, which nginx retries on another upstream.
 * Requests of sessions already open still pass, so in-flight work can finish. Engine.IO's own
 * `allowRequest` could only answer 403, which a load balancer must not treat as "try elsewhere".
 */
import type { Server as HttpServer, IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;
type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

function isNewHandshake(req: IncomingMessage, path: string): boolean {
  const url = req.url ?? "";
  return url.startsWith(path) && !/[?&]sid=/.test(url);
}

/** Installs the gate in front of the server's listeners; `closed()` tells whether to refuse. */
export function installDrainGate(server: HttpServer, path: string, closed: () => boolean): void {
  const requestListeners = server.listeners("request") as RequestListener[];
  const upgradeListeners = server.listeners("upgrade") as UpgradeListener[];
  server.removeAllListeners("request");
  server.removeAllListeners("upgrade");
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    if (closed() && isNewHandshake(req, path)) {
      res.writeHead(503, { "content-type": "application/json", connection: "close", "retry-after": "1" });
      res.end(JSON.stringify({ error: { code: "UNAVAILABLE", message: "node is draining" } }));
      return;
    }
    for (const l of requestListeners) l.call(server, req, res);
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (closed() && isNewHandshake(req, path)) {
      socket.end("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    for (const l of upgradeListeners) l.call(server, req, socket, head);
  });
}
