/**
 * Socket.IO on the node's HTTP server: the handshake (authentication, connection cap), connection
 * accounting, the per-socket policies, and draining. `io.use()` does authentication and admission
 * only; events go to the thin handlers, which call the core.
 */
import type { Server as HttpServer } from "node:http";
import { Server } from "socket.io";
import { ConnectError } from "@chat/protocol";
import type { Logger } from "pino";
import type { Config } from "../../config.ts";
import type { Authenticator } from "../../auth.ts";
import type { Broker } from "../../broker/types.ts";
import { disconnectReasonLabel, type Metrics } from "../../metrics.ts";
import type { RateLimiter } from "../../rate-limit.ts";
import type { ConnectionCap } from "../../connection-cap.ts";
import { AppError } from "../../errors.ts";
import type { ChatCore } from "../../core/chat-core.ts";
import { createHandlers } from "./handlers.ts";
import { SocketFanout, type ChatServer, type ChatSocket } from "./fanout.ts";
import { installDrainGate } from "./policies/drain-gate.ts";
import { slowConsumerCheck } from "./policies/slow-consumers.ts";
import { tokenExpiryCheck } from "./policies/token-expiry.ts";
import { sweepSockets, type SocketCheck } from "./policies/socket-sweep.ts";
import { filterDeliveries, installDirectBroadcast, releaseHandshake, releaseUpgradeRequest } from "./patches/index.ts";
import type { DeliveryFilter } from "./patches/broadcast-chain.ts";

export const SOCKET_PATH = "/socket.io/";

function refusal(code: string, message: string, extra: { retryAfter?: number } = {}): Error {
  return Object.assign(new Error(code), { data: { code, message, ...extra } });
}

export interface RealtimeDeps {
  config: Readonly<Config>;
  auth: Authenticator;
  broker: Broker;
  limiter: RateLimiter;
  /** MAX_CONNECTIONS_PER_USER; none: no per-user cap. */
  connectionCap?: ConnectionCap;
  metrics: Metrics;
  logger: Logger;
}

export interface Realtime {
  io: ChatServer;
  /** The core's ports over this server's rooms and adapter. */
  ports: SocketFanout;
  /** Starts handling client events with the core (once, after it is built over `ports`). */
  serve(core: ChatCore): void;
  /** Every `newMessage` delivery to this node's conversation rooms asks `filter` first. */
  filterDeliveries(filter: DeliveryFilter): void;
  /** Refuses new handshakes and events, waits for in-flight events, then closes every transport so clients reconnect elsewhere. */
  drain(deadline: number): Promise<void>;
  /** Events being handled now. */
  inflight(): number;
  close(): Promise<void>;
}

export function createRealtime(server: HttpServer, deps: RealtimeDeps): Realtime {
  const { config, metrics, logger } = deps;
  if (config.broadcastDirectWrite) installDirectBroadcast();
  const io: ChatServer = new Server(server, {
    path: SOCKET_PATH,
    serveClient: false,
    maxHttpBufferSize: config.socketMaxBufferBytes,
    cors: { origin: config.corsOrigins.includes("*") ? true : config.corsOrigins, methods: ["GET", "POST"], credentials: true },
    ...(deps.broker.adapter ? { adapter: deps.broker.adapter } : {}),
  });
  const ports = new SocketFanout(io, metrics, deps.broker.kind !== "local");
  let draining = false;
  let connected = 0;
  const inflight = { count: 0, onIdle: () => {} };
  installDrainGate(server, SOCKET_PATH, () => draining);
  // One walk over the sockets each second for both bounds no event triggers.
  const checks = [
    tokenExpiryCheck((info) => {
      if (logger.isLevelEnabled("debug")) logger.debug(info, "token expired: transport closed");
    }),
    slowConsumerCheck(config.socketMaxOutgoingBytes, (info) => {
      metrics.slowConsumersCut.inc();
      logger.warn({ ...info, limit: config.socketMaxOutgoingBytes }, "slow consumer cut: too much waiting to be sent");
    }),
  ].filter((c): c is SocketCheck => c !== undefined);
  const stopSweeping = sweepSockets(io, checks);
  /** Sockets that hold a place under the per-user cap, released once at their disconnect. */
  const admitted = new Set<string>();

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
    admit(socket, token).then(next, (err: unknown) => {
      logger.warn({ err }, "handshake admission failed");
      next(refusal(ConnectError.UNAVAILABLE, "the node cannot admit connections now"));
    });
  });

  /**
   * The handshake's admission, after the drain and capacity checks: a valid token, the user's
   * handshake rate (RATE_HANDSHAKE_*), then a place under MAX_CONNECTIONS_PER_USER (cluster-wide
   * with Redis), which the socket holds until it disconnects. Resolves to next()'s argument.
   */
  async function admit(socket: ChatSocket, token: unknown): Promise<Error | undefined> {
    let identity: Awaited<ReturnType<Authenticator["identify"]>>;
    try {
      identity = await deps.auth.identify(token);
    } catch (err) {
      if (err instanceof AppError && err.code === "UNAVAILABLE") {
        metrics.connectionsRefused.inc({ reason: "unavailable" });
        return refusal(ConnectError.UNAVAILABLE, "the identity provider cannot be reached, retry later");
      }
      metrics.connectionsRefused.inc({ reason: "unauthorized" });
      return refusal(ConnectError.UNAUTHORIZED, "missing, invalid or expired token");
    }
    const { userId, expiresAt } = identity;
    try {
      deps.limiter.check("handshake", userId);
    } catch (err) {
      metrics.connectionsRefused.inc({ reason: "rate_limited" });
      return refusal(ConnectError.RATE_LIMITED, "too many connections opened, retry later", { retryAfter: (err as AppError).retryAfter });
    }
    const cap = deps.connectionCap;
    if (cap && !(await cap.admit(userId))) {
      metrics.connectionsRefused.inc({ reason: "user_cap" });
      if (logger.isLevelEnabled("debug")) logger.debug({ userId, max: cap.max }, "handshake refused: MAX_CONNECTIONS_PER_USER");
      return refusal(ConnectError.RATE_LIMITED, `this user holds ${cap.max} connections, the most allowed (MAX_CONNECTIONS_PER_USER)`);
    }
    // The client may have gone while we waited: Socket.IO then drops the socket without a
    // `disconnect`, so its place is given back here (same tick as Socket.IO's own check).
    if (socket.conn.readyState !== "open" || draining) {
      cap?.release(userId);
      return refusal(ConnectError.UNAVAILABLE, draining ? "node is draining" : "connection closed during the handshake");
    }
    socket.data = expiresAt === undefined ? { id: socket.id, userId } : { id: socket.id, userId, expiresAt };
    if (cap) admitted.add(socket.id);
    return undefined;
  }

  const countOutgoing = (event: string) => {
    if (event === "newMessage") metrics.countFanout(1);
  };

  let attachHandlers: ((socket: ChatSocket) => void) | undefined;
  const debug = logger.isLevelEnabled("debug");
  // Shared by every socket (`this` is the socket): an idle socket carries no closures of ours.
  function onDisconnect(this: ChatSocket, reason: string): void {
    connected--;
    if (admitted.delete(this.id)) deps.connectionCap?.release(this.data.userId);
    if (debug) logger.debug({ socketId: this.id, userId: this.data.userId, reason }, "socket disconnected");
    metrics.connectedSockets.set(connected);
    metrics.connectionsClosed.inc({ reason: disconnectReasonLabel(reason) });
  }
  io.engine.use(releaseUpgradeRequest);
  io.on("connection", (socket) => {
    connected++;
    if (debug) logger.debug({ socketId: socket.id, userId: socket.data.userId, transport: socket.conn.transport.name }, "socket connected");
    metrics.connectionsOpened.inc();
    metrics.connectedSockets.set(connected);
    socket.onAnyOutgoing(countOutgoing);
    releaseHandshake(socket);
    attachHandlers?.(socket);
    socket.on("disconnect", onDisconnect);
  });

  return {
    io,
    ports,
    serve(core) {
      attachHandlers = createHandlers({ core, limiter: deps.limiter, metrics, logger, inflight, isDraining: () => draining });
    },
    filterDeliveries: (filter) => filterDeliveries(io, filter),
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
