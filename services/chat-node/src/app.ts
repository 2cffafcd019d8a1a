/**
 * `buildApp(config, deps)` composes a node without listening: Fastify for REST and operations,
 * Socket.IO on the same HTTP server, the store behind group commit, the broker. Tests build the
 * app the same way `main.ts` does.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from "fastify";
import fastifyCors from "@fastify/cors";
import fastifyStatic from "@fastify/static";
import { pino, type Logger } from "pino";
import type { Config } from "./config.ts";
import { usesDevSecret } from "./config.ts";
import { createAuthenticator } from "./auth.ts";
import { AppError } from "./errors.ts";
import { ErrorCode, Limits, type ServerLimits } from "@chat/protocol";
import { createMetrics, type Metrics } from "./metrics.ts";
import { createAbuseLimits } from "./abuse-limits.ts";
import { createStore } from "./store/index.ts";
import { GroupCommitter } from "./store/group-commit.ts";
import type { MessageStore } from "./store/types.ts";
import { createBroker } from "./broker/index.ts";
import type { Broker } from "./broker/types.ts";
import { ChatCore } from "./core/chat-core.ts";
import { createRealtime, type Realtime } from "./transport/socket/server.ts";
import type { ChatServer } from "./transport/socket/fanout.ts";
import { directWriteCount } from "./transport/socket/patches/index.ts";
import { frameworkErrors, installErrorHandling, type CorsPolicy } from "./transport/http/error-handler.ts";
import { installRequestMetrics } from "./transport/http/request-metrics.ts";
import { genReqId, installEngineRequestIds, installRequestIds, withRequestId } from "./transport/http/request-id.ts";
import { conversationRoutes } from "./transport/http/conversations.ts";
import { opsRoutes } from "./transport/http/ops.ts";
import { devRoutes } from "./transport/http/dev.ts";
import { installOpenApi } from "./transport/http/openapi.ts";

const DEFAULT_WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../web/dist");

export interface AppDeps {
  store?: MessageStore;
  broker?: Broker;
  logger?: Logger;
}

export interface App {
  config: Readonly<Config>;
  fastify: FastifyInstance;
  io: ChatServer;
  core: ChatCore;
  metrics: Metrics;
  store: MessageStore;
  broker: Broker;
  realtime: Realtime;
  /** Listens on config.host:config.port; resolves to the bound port. */
  listen(): Promise<number>;
  /** SIGTERM: drain (CONTRACT.md §5), then close everything. */
  shutdown(): Promise<void>;
}

export async function buildApp(config: Readonly<Config>, deps: AppDeps = {}): Promise<App> {
  const logger =
    deps.logger ??
    pino({ level: config.logLevel, base: { nodeId: config.nodeId }, redact: ["req.headers.authorization", "token", "auth.token"] });
  if (config.devTokens) {
    logger.warn(
      `DEV_INSECURE_TOKENS is on: POST /dev/token mints a token for any user id${usesDevSecret(config) ? ", and tokens are signed with the development secret published in the repository" : ""}. Never expose this node.`,
    );
  }

  const metrics = createMetrics(config.nodeId, { redis: Boolean(config.redisUrl), directWrites: directWriteCount, maxConnections: config.maxConnections });
  const store = deps.store ?? (await createStore(config, logger));
  await initStore(store, logger, metrics);
  const broker = deps.broker ?? (await createBroker(config, logger, metrics));
  const committer = new GroupCommitter(store, {
    batchMax: config.storeBatchMax,
    waitMs: config.storeBatchWaitMs,
    queueMax: config.storeQueueMax,
    metrics,
  });
  const auth = createAuthenticator(config.jwt, { onKeyFetchError: (err) => logger.warn({ err }, "cannot fetch the identity provider's keys (JWT_JWKS_URL)") });
  const abuse = createAbuseLimits(config, logger, metrics);
  const limiter = abuse.limiter;

  // CORS for REST from CORS_ORIGINS, as Socket.IO has it (`*`: any origin, reflected).
  const cors: CorsPolicy = {
    allows: (origin) => origin !== undefined && (config.corsOrigins.includes("*") || config.corsOrigins.includes(origin)),
    exposedHeaders: ["Retry-After", "WWW-Authenticate", "X-Request-Id"],
  };
  const fastify = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 512 * 1024,
    trustProxy: true,
    // Requests that arrive while Fastify closes get the contract's 503 from the hook below instead.
    return503OnClosing: false,
    routerOptions: { maxParamLength: 512 },
    frameworkErrors: withRequestId(frameworkErrors(metrics, cors)),
    // X-Request-Id (nginx's, or generated when absent or unsafe) is the request id: request-id.ts.
    requestIdHeader: false,
    genReqId,
  });
  // Socket.IO on Fastify's HTTP server; the core over its rooms; the core's events handled.
  const realtime = createRealtime(fastify.server, { config, auth, broker, limiter, connectionCap: abuse.connectionCap, metrics, logger });
  const core = new ChatCore({
    store,
    committer,
    broker,
    fanout: realtime.ports,
    rooms: realtime.ports,
    peers: realtime.ports,
    metrics,
    maxMessageLength: config.maxMessageLength,
    typingTimeoutMs: config.typingTimeoutMs,
    onError: (err, what) => logger.warn({ err }, `${what} failed`),
  });
  realtime.serve(core);
  realtime.filterDeliveries({
    newMessage: (conversationId, seq) => core.admitDelivery(conversationId, seq),
    typing: (conversationId, userId, isTyping) => core.observeTyping(conversationId, userId, isTyping),
  });
  let draining = false;

  installErrorHandling(fastify, metrics);
  installRequestIds(fastify);
  installEngineRequestIds(realtime.io.engine);
  installRequestMetrics(fastify, metrics);
  // The CORS plugin with that policy, registered before every route so that its onRequest hook
  // runs first: a preflight is answered before authentication and rate limits, and errors (401,
  // 403, 404, 429) carry the headers too (the router's own 400s get them in frameworkErrors). A
  // request without Origin, or from another origin, gets no CORS headers (an OPTIONS is then the
  // usual JSON 404).
  await fastify.register(fastifyCors, {
    origin: (origin, cb) => cb(null, cors.allows(origin)),
    methods: ["GET", "POST", "HEAD", "OPTIONS"],
    allowedHeaders: ["Authorization", "Content-Type"],
    exposedHeaders: cors.exposedHeaders,
    credentials: true,
    maxAge: 600,
    // An allowed origin's OPTIONS without Access-Control-Request-Method gets 204 too, rather than
    // the plugin's text/plain 400 that no contract error looks like.
    strictPreflight: false,
  });
  // After the drain, while fastify.close() waits for the connections to end, a request can still
  // come on a kept-alive connection (nginx's upstream pool): it is answered 503 UNAVAILABLE in the
  // contract's error shape, with Connection: close, and nginx or the client tries another node.
  // The first request of a connection accepted before the listener closed is served (with
  // Connection: close): nginx opens one connection per request to a node and sends at once, so
  // that request is already on its way; a 503 or a reset would reach the client, since nginx does
  // not replay a POST it has sent.
  let closing = false;
  const usedConnections = new WeakSet<object>();
  fastify.addHook("onRequest", async (req, reply) => {
    const socket = req.raw.socket;
    const first = !usedConnections.has(socket);
    if (first) usedConnections.add(socket);
    if (!closing) return;
    reply.header("connection", "close");
    if (first) return;
    reply.header("retry-after", "1");
    throw new AppError(ErrorCode.UNAVAILABLE, "node is shutting down, retry on another");
  });
  // Requests whose handler runs (body read, a send waiting for its commit): the drain's cut-off
  // waits for them, so a REST send in flight is answered, as a socket send is.
  // Counted until the response's `close`, which follows its end and a client's disconnect alike
  // (onResponse and onRequestAbort miss a client that leaves after its body was read).
  const handling = new Set<FastifyRequest>();
  fastify.addHook("preHandler", async (req, reply) => {
    handling.add(req);
    reply.raw.once("close", () => handling.delete(req));
  });
  // Per-request lines at debug only: at info they would cost throughput and fill disks under load.
  if (logger.isLevelEnabled("debug")) {
    fastify.addHook("onResponse", async (req, reply) => {
      req.log.debug({ method: req.method, url: req.routeOptions.url ?? req.url, status: reply.statusCode, userId: req.userId || undefined, ms: reply.elapsedTime }, "request");
    });
  }
  // Before every route: the OpenAPI plugin collects them as they are added (GET /openapi.json).
  await installOpenApi(fastify, { version: "1.0.0" });
  await fastify.register(opsRoutes, {
    metrics,
    nodeId: config.nodeId,
    isDraining: () => draining,
    isFull: () => realtime.io.of("/").sockets.size >= config.maxConnections,
    probes: [
      { name: "store", check: () => store.ping() },
      ...(broker.kind === "redis" ? [{ name: "redis", check: () => broker.ping() }] : []),
    ],
  });
  const limits: ServerLimits = {
    maxMessageLength: config.maxMessageLength,
    typingTimeoutMs: config.typingTimeoutMs,
    clientMessageIdMaxLength: Limits.clientMessageIdMaxLength,
    idMaxLength: Limits.idMaxLength,
    titleMaxLength: Limits.titleMaxLength,
    membersMax: Limits.membersMax,
    pageMax: Limits.pageMax,
    missedMax: Limits.missedMax,
    ...abuse.describe(),
  };
  await fastify.register(conversationRoutes, { core, auth, limiter, limits });
  if (config.devTokens) await fastify.register(devRoutes, { auth, limiter });
  const webDir = config.webDir ?? DEFAULT_WEB_DIR;
  if (fs.existsSync(path.join(webDir, "index.html"))) {
    await fastify.register(fastifyStatic, { root: webDir, prefix: "/", wildcard: false, index: ["index.html"] });
  }

  fastify.addHook("onClose", async () => {
    await abuse.close();
    core.close();
    await realtime.close();
    await committer.close();
    await broker.close();
    await store.close();
  });

  return {
    config,
    fastify,
    io: realtime.io,
    core,
    metrics,
    store,
    broker,
    realtime,
    async listen() {
      await fastify.listen({ port: config.port, host: config.host });
      const address = fastify.server.address();
      const port = typeof address === "object" && address ? address.port : config.port;
      core.start();
      logger.info({ port, host: config.host, store: store.kind, broker: broker.kind }, "listening");
      return port;
    },
    async shutdown() {
      if (draining) return;
      draining = true;
      const deadline = Date.now() + config.shutdownTimeoutMs;
      metrics.draining.set(1);
      logger.info("draining");
      await realtime.drain(Date.now() + Math.max(100, config.shutdownTimeoutMs - 1000));
      // A keep-alive connection (nginx's upstream pool) busy when close() began turns idle later and
      // would hold close() until keepAliveTimeout: close such connections as soon as they are idle.
      const idleCloser = setInterval(() => fastify.server.closeIdleConnections(), 100);
      // A connection that never sent a request (a browser's pre-connect, a port probe) or stalled
      // half-way through one is not idle to Node and would hold close() past SHUTDOWN_TIMEOUT_MS
      // (exit 1). Once no handler runs, a second after the drain, what is still open is cut; half a
      // second before the deadline it is cut whatever runs.
      const graceEnd = Date.now() + 1000;
      const cutter = setInterval(() => {
        const now = Date.now();
        if (now < deadline - 500 && (now < graceEnd || handling.size > 0)) return;
        clearInterval(cutter);
        logger.info({ handling: handling.size }, "cutting the connections still open");
        fastify.server.closeAllConnections();
      }, 50);
      closing = true;
      // Let the poll phase accept the connections queued meanwhile (the drain may have held the
      // event loop for a while): closing the listener resets those still queued, whose request
      // nginx has already sent.
      await new Promise<void>((resolve) => setImmediate(resolve));
      try {
        await fastify.close();
      } finally {
        clearInterval(idleCloser);
        clearInterval(cutter);
      }
      logger.info("drained");
    },
  };
}

/**
 * SQLite must open or the node cannot serve at all. A remote store that is down at start-up is
 * retried in the background: the node serves, `/readyz` names the store, sends answer UNAVAILABLE.
 */
async function initStore(store: MessageStore, logger: Logger, metrics: Metrics): Promise<void> {
  if (store.kind === "sqlite") return store.init();
  try {
    await store.init();
  } catch (err) {
    metrics.storeUp.set(0);
    logger.error({ err }, "store unavailable at start-up; retrying in the background");
    const retry = setInterval(() => {
      store.init().then(
        () => {
          clearInterval(retry);
          metrics.storeUp.set(1);
          logger.info("store initialized");
        },
        () => {},
      );
    }, 2000);
    retry.unref();
  }
}
