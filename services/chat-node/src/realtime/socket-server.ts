/**
 * Socket.IO on the node's HTTP server: the handshake (authentication, connection cap), connection
 * accounting, and draining. `io.use()` does authentication and admission only.
 */
import { ServerResponse, type IncomingMessage, type Server as HttpServer } from "node:http";
import { Server, type Socket } from "socket.io";
import { ConnectError, type MessageData } from "@chat/protocol";
import type { Config } from "../config.ts";
import type { Authenticator } from "../auth.ts";
import type { Broker } from "../cluster/types.ts";
import { disconnectReasonLabel } from "../metrics.ts";
import { createHandlers, type HandlerDeps } from "./handlers.ts";
import { installDrainGate } from "./drain-gate.ts";
import { installDirectBroadcast } from "./direct-broadcast.ts";
import { slowConsumerCheck } from "./slow-consumers.ts";
import { tokenExpiryCheck } from "./token-expiry.ts";
import { sweepSockets, type SocketCheck } from "./socket-sweep.ts";
import { Broadcaster } from "./broadcaster.ts";
import { TypingTracker } from "./typing.ts";

export const SOCKET_PATH = "/socket.io/";

function refusal(code: string, message: string): Error {
  return Object.assign(new Error(code), { data: { code, message } });
}

/**
 * Engine.IO answers a WebSocket upgrade through a stand-in response object that a `close` listener
 * on the TCP socket keeps for the whole connection, and that object keeps the upgrade request (its
 * headers, URL, parser leftovers: about 2 KB a socket). Engine.IO reads it only until it calls
 * `writeHead()` and hands the request to ws; from then on the reference is let go.
 */
function releaseUpgradeRequest(_req: IncomingMessage, res: unknown, next: (err?: unknown) => void): void {
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

export interface RealtimeDeps extends Omit<HandlerDeps, "inflight" | "isDraining" | "broadcaster" | "typing" | "announce"> {
  config: Readonly<Config>;
  auth: Authenticator;
  broker: Broker;
}

export interface Realtime {
  io: Server;
  broadcaster: Broadcaster;
  /** A message was stored (by socket or REST): broadcast it and end its sender's typing from before `receivedAt` (the send's `performance.now()`). */
  announce(message: MessageData, receivedAt: number, sender?: Socket): void;
  /** Refuses new handshakes and events, waits for in-flight events, then closes every transport so clients reconnect elsewhere. */
  drain(deadline: number): Promise<void>;
  /** Events being handled now. */
  inflight(): number;
  close(): Promise<void>;
}

export function createRealtime(server: HttpServer, deps: RealtimeDeps): Realtime {
  const { config, metrics } = deps;
  if (config.broadcastDirectWrite) installDirectBroadcast();
  const io = new Server(server, {
    path: SOCKET_PATH,
    serveClient: false,
    maxHttpBufferSize: config.socketMaxBufferBytes,
    cors: { origin: config.corsOrigins.includes("*") ? true : config.corsOrigins, methods: ["GET", "POST"], credentials: true },
    ...(deps.broker.adapter ? { adapter: deps.broker.adapter } : {}),
  });
  const broadcaster = new Broadcaster(io, metrics);
  const typing = new TypingTracker(config.typingTimeoutMs, (c, u, t, except) => broadcaster.typing(c, u, t, except), deps.broker.typing);
  const announce = (message: MessageData, receivedAt: number, sender?: Socket) => {
    broadcaster.newMessage(message, sender);
    typing.end(message.conversationId, message.senderId, receivedAt);
  };
  let draining = false;
  let connected = 0;
  const inflight = { count: 0, onIdle: () => {} };
  installDrainGate(server, SOCKET_PATH, () => draining);
  // One walk over the sockets each second for both bounds no event triggers.
  const checks = [
    tokenExpiryCheck((info) => {
      if (deps.logger.isLevelEnabled("debug")) deps.logger.debug(info, "token expired: transport closed");
    }),
    slowConsumerCheck(config.socketMaxOutgoingBytes, (info) => {
      metrics.slowConsumersCut.inc();
      deps.logger.warn({ ...info, limit: config.socketMaxOutgoingBytes }, "slow consumer cut: too much waiting to be sent");
    }),
  ].filter((c): c is SocketCheck => c !== undefined);
  const stopSweeping = sweepSockets(io, checks);

  io.use((socket, next) => {
    if (draining) {
      metrics.connectionsRefused.inc({ reason: "draining" });
      return next(refusal(ConnectError.UNAVAILABLE, "node is draining"));
    }
    if (connected >= config.maxConnections) {
      metrics.connectionsRefused.inc({ reason: "capacity" });
      return next(refusal(ConnectError.UNAVAILABLE, "node connection limit reached"));
    }
    const auth: unknown = socket.handshake.auth;
    const token = auth && typeof auth === "object" ? (auth as { token?: unknown }).token : undefined;
    deps.auth.identify(token).then(
      ({ userId, expiresAt }) => {
        socket.data.userId = userId;
        if (expiresAt !== undefined) socket.data.expiresAt = expiresAt;
        next();
      },
      () => {
        metrics.connectionsRefused.inc({ reason: "unauthorized" });
        next(refusal(ConnectError.UNAUTHORIZED, "missing, invalid or expired token"));
      },
    );
  });

  const countOutgoing = (event: string) => {
    if (event === "newMessage") metrics.countFanout(1);
  };

  const attachHandlers = createHandlers({ ...deps, broadcaster, typing, announce, inflight, isDraining: () => draining });
  const debug = deps.logger.isLevelEnabled("debug");
  // Shared by every socket (`this` is the socket): an idle socket carries no closures of ours.
  function onDisconnect(this: Socket, reason: string): void {
    connected--;
    if (debug) deps.logger.debug({ socketId: this.id, userId: this.data.userId, reason }, "socket disconnected");
    metrics.connectedSockets.set(connected);
    metrics.connectionsClosed.inc({ reason: disconnectReasonLabel(reason) });
  }
  io.engine.use(releaseUpgradeRequest);
  io.on("connection", (socket: Socket) => {
    connected++;
    if (debug) deps.logger.debug({ socketId: socket.id, userId: socket.data.userId, transport: socket.conn.transport.name }, "socket connected");
    metrics.connectionsOpened.inc();
    metrics.connectedSockets.set(connected);
    socket.onAnyOutgoing(countOutgoing);
    // Engine.IO keeps the handshake's IncomingMessage for the whole session, and the handshake keeps
    // its headers and the token: nothing reads them after authentication, so let them go (Socket.IO's
    // memory guide; an idle socket is the common case, and the memory per socket is what scales).
    (socket.conn as unknown as { request: unknown }).request = null;
    socket.handshake.headers = {};
    socket.handshake.auth = {};
    socket.handshake.query = {};
    attachHandlers(socket);
    socket.on("disconnect", onDisconnect);
  });

  return {
    io,
    broadcaster,
    announce,
    inflight: () => inflight.count,
    async drain(deadline) {
      draining = true;
      if (inflight.count > 0) {
        await new Promise<void>((resolve) => {
          inflight.onIdle = resolve;
          setTimeout(resolve, Math.max(0, deadline - Date.now())).unref();
        });
      }
      // A transport close, unlike socket.disconnect(), makes socket.io-client reconnect.
      for (const socket of io.of("/").sockets.values()) socket.conn.close();
      const until = Math.min(deadline, Date.now() + 2000);
      while (connected > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    },
    async close() {
      stopSweeping();
      typing.close();
      // io.local: with the Redis adapter a plain io.disconnectSockets() disconnects every node's sockets.
      io.local.disconnectSockets(true);
      io.engine.close();
      await new Promise<void>((resolve) => {
        // io.close() would also close the HTTP server, which Fastify owns; close the adapters only.
        const adapter = io.of("/").adapter as { close?: () => Promise<void> | void };
        Promise.resolve(adapter.close?.()).then(() => resolve(), () => resolve());
      });
    },
  };
}
