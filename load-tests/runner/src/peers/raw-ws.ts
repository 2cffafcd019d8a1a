/**
 * The floor: a raw `ws` broadcast server with rooms and no framing library. Each text frame is a
 * small JSON command; a message is parsed once, stamped, serialised once and written to every
 * socket of the room (the sender's own included, as the chat does). Nothing is stored or checked.
 *
 *   client → server  {"t":"join","room":"r1"} | {"t":"leave","room":"r1"} | {"t":"send","room":"r1","msg":"..."}
 *   server → client  {"t":"msg","room":"r1","msg":"...","ts":"<ISO>"}
 *
 * Run: `node load-tests/runner/src/peers/raw-ws.ts` (PORT, default 3002); prints "raw-ws listening".
 */
import http from "node:http";
import { WebSocketServer, type WebSocket } from "ws";

const rooms = new Map<string, Set<WebSocket>>();
const server = http.createServer((_req, res) => {
  res.writeHead(200, { "content-type": "text/plain" }).end("raw-ws\n");
});
const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 64 * 1024 });

interface Command {
  t?: unknown;
  room?: unknown;
  msg?: unknown;
}

wss.on("connection", (ws) => {
  const joined = new Set<string>();
  ws.on("message", (data, isBinary) => {
    if (isBinary) return;
    let cmd: Command;
    try {
      cmd = JSON.parse(data.toString()) as Command;
    } catch {
      return;
    }
    if (typeof cmd.room !== "string") return;
    const room = cmd.room;
    if (cmd.t === "join") {
      let set = rooms.get(room);
      if (!set) rooms.set(room, (set = new Set()));
      set.add(ws);
      joined.add(room);
    } else if (cmd.t === "leave") {
      rooms.get(room)?.delete(ws);
      joined.delete(room);
    } else if (cmd.t === "send" && typeof cmd.msg === "string") {
      const out = JSON.stringify({ t: "msg", room, msg: cmd.msg, ts: new Date().toISOString() });
      const set = rooms.get(room);
      if (set) for (const peer of set) if (peer.readyState === 1) peer.send(out);
    }
  });
  ws.on("close", () => {
    for (const room of joined) {
      const set = rooms.get(room);
      set?.delete(ws);
      if (set?.size === 0) rooms.delete(room);
    }
  });
});

const port = Number(process.env.PORT ?? 3002);
server.listen(port, process.env.HOST ?? "127.0.0.1", () => console.log(`raw-ws listening on ${port}`));
