/**
 * Socket.IO v5 over Engine.IO v4, WebSocket transport only: the framing the k6 scenarios and the
 * Node load runner share. Plain JavaScript with no imports, so it runs unchanged in k6 (goja /
 * sobek) and in Node; the project's tests drive it against the real chat node.
 *
 * Wire format (one Engine.IO packet per WebSocket text frame):
 *   Engine.IO:  "0{...}" open, "1" close, "2" ping, "3" pong, "4<socket.io packet>" message, "6" noop
 *   Socket.IO:  "<type>[<nsp>,][<ackId>][<json>]" with types 0 CONNECT, 1 DISCONNECT, 2 EVENT,
 *               3 ACK, 4 CONNECT_ERROR; the main namespace "/" is omitted.
 * So: `40{"token":"..."}` connects with auth, the server answers `40{"sid":"..."}` or
 * `44{"message":"UNAUTHORIZED"}`; `42["ev",{...}]` is an event, `4212["ev",{...}]` one that asks
 * for acknowledgement 12, answered `4312[{...}]`. In EIO4 the server pings ("2") and the client
 * must answer "3" within pingTimeout, or the server closes the connection.
 */

export const EIO_VERSION = "4";

export const EngineType = Object.freeze({ OPEN: "0", CLOSE: "1", PING: "2", PONG: "3", MESSAGE: "4", UPGRADE: "5", NOOP: "6" });
export const PacketType = Object.freeze({ CONNECT: 0, DISCONNECT: 1, EVENT: 2, ACK: 3, CONNECT_ERROR: 4, BINARY_EVENT: 5, BINARY_ACK: 6 });

/** WebSocket readyState OPEN (the browser API's value, which k6 and `ws` share). */
const OPEN = 1;

/** The pong frame a client sends back for every ping. */
export const PONG = "3";

/** `http://h:p` or `ws://h:p` → `ws://h:p/socket.io/?EIO=4&transport=websocket` (https → wss). */
export function socketUrl(baseUrl, path) {
  const p = path || "/socket.io/";
  let base = String(baseUrl).replace(/\/+$/, "");
  if (base.indexOf("https://") === 0) base = "wss://" + base.slice(8);
  else if (base.indexOf("http://") === 0) base = "ws://" + base.slice(7);
  return base + p + (p.indexOf("?") >= 0 ? "&" : "?") + "EIO=" + EIO_VERSION + "&transport=websocket";
}

function nspPrefix(nsp) {
  return !nsp || nsp === "/" ? "" : nsp + ",";
}

/** CONNECT to a namespace, with the handshake auth object (`{ token }`) when given. */
export function encodeConnect(auth, nsp) {
  return "40" + nspPrefix(nsp) + (auth === undefined || auth === null ? "" : JSON.stringify(auth));
}

/** EVENT `name` with `args` (an array of arguments); asks for an acknowledgement when `ackId` is a number. */
export function encodeEvent(name, args, ackId, nsp) {
  const data = [name];
  if (args) for (let i = 0; i < args.length; i++) data.push(args[i]);
  return "42" + nspPrefix(nsp) + (typeof ackId === "number" ? String(ackId) : "") + JSON.stringify(data);
}

/** ACK `ackId` with `args` (an array), answering an event the server sent with an id. */
export function encodeAck(ackId, args, nsp) {
  return "43" + nspPrefix(nsp) + String(ackId) + JSON.stringify(args || []);
}

/** DISCONNECT from a namespace (the socket.io client's `socket.disconnect()`). */
export function encodeDisconnect(nsp) {
  return "41" + nspPrefix(nsp);
}

function parseJson(text) {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (e) {
    return { ok: false, error: String(e) };
  }
}

/** Decodes the Socket.IO packet after the Engine.IO "4". */
function decodeSocketPacket(s) {
  const type = s.charCodeAt(0) - 48;
  let i = 1;
  if (type === PacketType.BINARY_EVENT || type === PacketType.BINARY_ACK) return { kind: "unsupported", reason: "binary packet", raw: s };
  let nsp = "/";
  if (s.charAt(i) === "/") {
    const comma = s.indexOf(",", i);
    const end = comma < 0 ? s.length : comma;
    nsp = s.slice(i, end);
    i = comma < 0 ? s.length : comma + 1;
  }
  let id;
  const idStart = i;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) break;
    i++;
  }
  if (i > idStart) id = Number(s.slice(idStart, i));
  const body = s.slice(i);
  let data;
  if (body.length > 0) {
    const parsed = parseJson(body);
    if (!parsed.ok) return { kind: "invalid", reason: parsed.error, raw: s };
    data = parsed.value;
  }
  switch (type) {
    case PacketType.CONNECT:
      return { kind: "connect", nsp, data };
    case PacketType.DISCONNECT:
      return { kind: "disconnect", nsp };
    case PacketType.CONNECT_ERROR:
      return { kind: "connect_error", nsp, data, message: data && typeof data.message === "string" ? data.message : String(data) };
    case PacketType.EVENT:
      if (!Array.isArray(data) || typeof data[0] !== "string") return { kind: "invalid", reason: "event without a name", raw: s };
      return { kind: "event", nsp, id, name: data[0], args: data.slice(1) };
    case PacketType.ACK:
      if (!Array.isArray(data) || id === undefined) return { kind: "invalid", reason: "ack without id or array", raw: s };
      return { kind: "ack", nsp, id, args: data };
    default:
      return { kind: "invalid", reason: "unknown packet type", raw: s };
  }
}

/**
 * Decodes one WebSocket text frame into `{ kind, ... }`: `open` (data: sid, pingInterval, ...),
 * `close`, `ping`, `pong`, `noop`, `connect` (data: { sid }), `connect_error` (message),
 * `disconnect`, `event` (name, args, id?), `ack` (id, args), or `invalid` / `unsupported` (reason).
 */
export function decode(frame) {
  if (typeof frame !== "string" || frame.length === 0) return { kind: "invalid", reason: "empty or binary frame" };
  const t = frame.charAt(0);
  if (t === EngineType.MESSAGE) {
    if (frame.length < 2) return { kind: "invalid", reason: "empty message", raw: frame };
    return decodeSocketPacket(frame.slice(1));
  }
  if (t === EngineType.PING) return { kind: "ping", data: frame.slice(1) };
  if (t === EngineType.PONG) return { kind: "pong", data: frame.slice(1) };
  if (t === EngineType.OPEN) {
    const parsed = parseJson(frame.slice(1));
    return parsed.ok ? { kind: "open", data: parsed.value } : { kind: "invalid", reason: parsed.error, raw: frame };
  }
  if (t === EngineType.CLOSE) return { kind: "close" };
  if (t === EngineType.NOOP) return { kind: "noop" };
  return { kind: "invalid", reason: "unknown engine packet", raw: frame };
}

/**
 * A Socket.IO client over any WebSocket with the browser API (`send`, `close`, `readyState`):
 * k6's `k6/websockets`, the `ws` package, a browser. No timers, so the caller owns timeouts.
 * Feed it every text frame (`client.feed(event.data)`), or let `attach()` wire `message`/`close`.
 *
 * handlers: onConnect(sid), onConnectError(message), onEvent(name, args, ackId), onDisconnect(reason)
 */
export function createSioClient(ws, opts) {
  const o = opts || {};
  const acks = {};
  let nextId = 0;
  const client = {
    sid: undefined,
    engineSid: undefined,
    connected: false,
    /** Decoded frames the client did not understand. */
    invalid: 0,
    pendingAcks: 0,
    /**
     * Emits an event; `ack(args)` is called with the answer's arguments when given. Throws
     * `InvalidStateError` when the transport is not open (k6's WebSocket throws that itself; the
     * `ws` package would drop the frame silently), and registers the acknowledgement only once the
     * frame is sent, so a failed emit leaves nothing pending.
     */
    emit(name, payload, ack) {
      const id = typeof ack === "function" ? nextId++ : undefined;
      if (typeof ws.readyState === "number" && ws.readyState !== OPEN) {
        const e = new Error("InvalidStateError: the WebSocket is not open (readyState " + ws.readyState + ")");
        e.name = "InvalidStateError";
        throw e;
      }
      ws.send(encodeEvent(name, payload === undefined ? [] : [payload], id, o.nsp));
      if (id !== undefined) {
        acks[id] = ack;
        client.pendingAcks++;
      }
      return id;
    },
    /** Forgets every pending acknowledgement (the connection is gone); returns their ids. */
    dropAcks() {
      const ids = Object.keys(acks).map(Number);
      for (const id of ids) delete acks[id];
      client.pendingAcks = 0;
      return ids;
    },
    /** Forgets a pending acknowledgement (after a caller's timeout); true if it was pending. */
    cancelAck(id) {
      if (acks[id] === undefined) return false;
      delete acks[id];
      client.pendingAcks--;
      return true;
    },
    /** Leaves the namespace and closes the transport. */
    close() {
      try {
        if (client.connected) ws.send(encodeDisconnect(o.nsp));
      } catch {
        /* the transport is already gone */
      }
      client.connected = false;
      ws.close();
    },
    /** Packets for another namespace than this client's, ignored by `feed()`. */
    otherNsp: 0,
    /** Handles one incoming text frame; returns the decoded packet. */
    feed(frame) {
      const p = decode(frame);
      // Socket.IO packets carry their namespace: a client of `/admin` must not take the `40` of `/`
      // (or its events, acks, disconnect) as its own. Engine.IO packets (open, ping, close) have none.
      if (p.nsp !== undefined && p.nsp !== (o.nsp || "/")) {
        client.otherNsp++;
        return p;
      }
      switch (p.kind) {
        case "open":
          client.engineSid = p.data && p.data.sid;
          ws.send(encodeConnect(o.auth, o.nsp));
          break;
        case "ping":
          ws.send(PONG);
          break;
        case "connect":
          client.connected = true;
          client.sid = p.data && p.data.sid;
          if (o.onConnect) o.onConnect(client.sid);
          break;
        case "connect_error":
          if (o.onConnectError) o.onConnectError(p.message, p.data);
          break;
        case "event":
          if (o.onEvent) o.onEvent(p.name, p.args, p.id);
          break;
        case "ack": {
          const cb = acks[p.id];
          if (cb !== undefined) {
            delete acks[p.id];
            client.pendingAcks--;
            cb(p.args);
          }
          break;
        }
        case "disconnect":
        case "close":
          client.connected = false;
          if (o.onDisconnect) o.onDisconnect(p.kind === "close" ? "transport close" : "io server disconnect");
          break;
        case "invalid":
        case "unsupported":
          client.invalid++;
          break;
        default:
          break;
      }
      return p;
    },
    /** Answers an event the server sent with an ack id. */
    ack(id, args) {
      ws.send(encodeAck(id, args, o.nsp));
    },
    /** Wires the WebSocket's `message` and `close` events to this client. */
    attach() {
      ws.addEventListener("message", (e) => {
        if (typeof e.data === "string") client.feed(e.data);
      });
      ws.addEventListener("close", () => {
        if (client.connected) {
          client.connected = false;
          if (o.onDisconnect) o.onDisconnect("transport close");
        }
      });
      return client;
    },
  };
  return client;
}
