/**
 * The node's Prometheus metrics, on a registry the app owns (never prom-client's global one).
 * Every label is a closed set: event names, error codes, reasons, route patterns. No label carries
 * a user, conversation or socket id. docs/observability.md's metrics table lists these names.
 */
import client from "prom-client";
import { CLIENT_EVENTS, ERROR_CODES } from "@chat/protocol";
import { RATE_SCOPES } from "./config.ts";

/** Socket.IO's disconnect reasons, folded into label values; anything else is `other`. */
export const DISCONNECT_REASONS = [
  "transport_close", "transport_error", "ping_timeout", "parse_error", "client_namespace_disconnect",
  "server_namespace_disconnect", "server_shutting_down", "forced_close", "forced_server_close", "other",
] as const;

export function disconnectReasonLabel(reason: string): (typeof DISCONNECT_REASONS)[number] {
  const label = reason.replace(/ /g, "_");
  return (DISCONNECT_REASONS as readonly string[]).includes(label) ? (label as (typeof DISCONNECT_REASONS)[number]) : "other";
}

export { RATE_SCOPES, type RateScope } from "./config.ts";

/** Why a handshake was refused: the `reason` label of chat_connections_refused_total. */
export const REFUSAL_REASONS = ["unauthorized", "capacity", "draining", "rate_limited", "user_cap", "unavailable"] as const;

export type Metrics = ReturnType<typeof createMetrics>;

/** HTTP status codes folded into classes: the label set stays closed whatever a route answers. */
export const STATUS_CLASSES = ["2xx", "3xx", "4xx", "5xx"] as const;
export function statusClassLabel(status: number): (typeof STATUS_CLASSES)[number] {
  return status >= 500 ? "5xx" : status >= 400 ? "4xx" : status >= 300 ? "3xx" : "2xx";
}
/** The `route` label of a request that matched no route (any method, any path). */
export const UNMATCHED_ROUTE = { method: "*", route: "unmatched" } as const;

/** Latency buckets from 0.1 ms to 10 s. */
const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface MetricsOptions {
  redis?: boolean;
  /** Broadcast frames written past Engine.IO so far in this process (transport/socket/patches/direct-broadcast.ts). */
  directWrites?: () => number;
  /** MAX_CONNECTIONS, exported as chat_max_connections so that dashboards and alerts see how full a node is. */
  maxConnections?: number;
}

export function createMetrics(nodeId: string, opts: MetricsOptions = {}) {
  const registry = new client.Registry();
  registry.setDefaultLabels({ node: nodeId });
  client.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });

  // Deliveries are counted on the hot path as a plain number and folded into the counter at scrape time.
  let pendingFanout = 0;
  const directWrites = opts.directWrites ?? (() => 0);
  let directWritesSeen = directWrites();

  const m = {
    registry,
    connectedSockets: new client.Gauge({ name: "chat_connected_sockets", help: "Socket.IO connections open on this node", registers: [registry] }),
    maxConnections: new client.Gauge({
      name: "chat_max_connections", help: "MAX_CONNECTIONS: the sockets this node admits; at it, handshakes are refused (reason capacity) and /readyz answers 503",
      registers: [registry],
    }),
    connectionsOpened: new client.Counter({ name: "chat_connections_opened_total", help: "Socket.IO connections accepted", registers: [registry] }),
    connectionsClosed: new client.Counter({
      name: "chat_connections_closed_total", help: "Socket.IO connections closed, by disconnect reason",
      labelNames: ["reason"] as const, registers: [registry],
    }),
    connectionsRefused: new client.Counter({
      name: "chat_connections_refused_total", help: "Socket.IO handshakes refused (unauthorized, capacity, draining, rate_limited, user_cap, unavailable)",
      labelNames: ["reason"] as const, registers: [registry],
    }),
    eventsReceived: new client.Counter({
      name: "chat_events_received_total", help: "Client events received, by event name (unknown names count as unknown)",
      labelNames: ["event"] as const, registers: [registry],
    }),
    errors: new client.Counter({ name: "chat_errors_total", help: "Errors answered to clients, by contract code", labelNames: ["code"] as const, registers: [registry] }),
    messagesStored: new client.Counter({ name: "chat_messages_stored_total", help: "Messages durably stored (duplicates excluded)", registers: [registry] }),
    messagesDuplicate: new client.Counter({ name: "chat_messages_duplicate_total", help: "Sends answered with the stored original of a repeated clientMessageId", registers: [registry] }),
    fanoutDeliveries: new client.Counter({
      name: "chat_fanout_deliveries_total", help: "newMessage packets written to sockets of this node",
      registers: [registry],
      collect() {
        if (pendingFanout > 0) {
          this.inc(pendingFanout);
          pendingFanout = 0;
        }
      },
    }),
    broadcastDirectWrites: new client.Counter({
      name: "chat_broadcast_direct_writes_total",
      help: "Broadcast frames (newMessage, typing, presence) written straight to a WebSocket's TCP socket, past Engine.IO's per-socket path",
      registers: [registry],
      collect() {
        const now = directWrites();
        if (now > directWritesSeen) this.inc(now - directWritesSeen);
        directWritesSeen = now;
      },
    }),
    gapRepaired: new client.Counter({ name: "chat_gap_repaired_total", help: "Messages delivered to this node's sockets from the store because their broadcast never reached this node (Redis outage, a lagging subscriber)", registers: [registry] }),
    slowConsumersCut: new client.Counter({
      name: "chat_slow_consumers_cut_total",
      help: "Sockets cut because more than SOCKET_MAX_OUTGOING_BYTES waited to be sent to them (a client that stopped reading)",
      registers: [registry],
    }),
    rateLimited: new client.Counter({ name: "chat_rate_limited_total", help: "Requests refused by a rate limit, by scope", labelNames: ["scope"] as const, registers: [registry] }),
    rateLimitClusterWide: new client.Gauge({
      name: "chat_rate_limit_cluster_wide",
      help: "1 while rate limits are settled with Redis (cluster-wide), 0 while the node falls back to its local limits; absent without REDIS_URL",
      registers: opts.redis ? [registry] : [],
    }),
    rateLimitFallbacks: new client.Counter({
      name: "chat_rate_limit_fallbacks_total",
      help: "Failed settlements with Redis (rate limits) and connection-cap decisions taken locally because Redis could not be asked, by what fell back",
      labelNames: ["what"] as const, registers: opts.redis ? [registry] : [],
    }),
    typingBroadcasts: new client.Counter({ name: "chat_typing_broadcasts_total", help: "Typing transitions broadcast, by state", labelNames: ["state"] as const, registers: [registry] }),
    presenceChanges: new client.Counter({ name: "chat_presence_changes_total", help: "Presence transitions broadcast, by state", labelNames: ["state"] as const, registers: [registry] }),
    storeCommitSeconds: new client.Histogram({ name: "chat_store_commit_seconds", help: "Time to commit one batch to the store", buckets: LATENCY_BUCKETS, registers: [registry] }),
    storeBatchSize: new client.Histogram({ name: "chat_store_batch_size", help: "Messages per committed batch (group commit)", buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], registers: [registry] }),
    storeQueueDepth: new client.Gauge({ name: "chat_store_queue_depth", help: "Sends waiting for a store commit", registers: [registry] }),
    sendAckSeconds: new client.Histogram({ name: "chat_send_ack_seconds", help: "From a send received to its acknowledgement (stored, broadcast)", buckets: LATENCY_BUCKETS, registers: [registry] }),
    brokerPublishErrors: new client.Counter({ name: "chat_broker_publish_errors_total", help: "Errors of the Redis broker (publish, subscribe, presence, typing)", registers: [registry] }),
    redisUp: new client.Gauge({
      name: "chat_redis_up", help: "1 when the Redis broker is connected, 0 when not; absent without REDIS_URL",
      registers: opts.redis ? [registry] : [],
    }),
    storeUp: new client.Gauge({ name: "chat_store_up", help: "1 when the last store operation or ping succeeded", registers: [registry] }),
    draining: new client.Gauge({ name: "chat_draining", help: "1 once SIGTERM started draining this node", registers: [registry] }),
    httpRequests: new client.Counter({
      name: "chat_http_requests_total", help: "REST requests answered, by route pattern, method and status class",
      labelNames: ["method", "route", "status"] as const, registers: [registry],
    }),
    httpRequestSeconds: new client.Histogram({
      name: "chat_http_request_duration_seconds", help: "REST request duration, from the request received to the response sent",
      labelNames: ["method", "route"] as const, buckets: LATENCY_BUCKETS, registers: [registry],
    }),
    /** Creates a route's series at zero, so that dashboards see them before the first request. */
    declareRoute(method: string, route: string): void {
      for (const status of STATUS_CLASSES) m.httpRequests.inc({ method, route, status }, 0);
      m.httpRequestSeconds.zero({ method, route });
    },
    /** Hot-path fan-out counting, folded into chat_fanout_deliveries_total on scrape. */
    countFanout(n: number): void {
      pendingFanout += n;
    },
  };

  // Pre-create the closed label sets so dashboards see zeros rather than absent series.
  for (const e of [...CLIENT_EVENTS, "unknown"]) m.eventsReceived.inc({ event: e }, 0);
  for (const c of ERROR_CODES) m.errors.inc({ code: c }, 0);
  for (const r of DISCONNECT_REASONS) m.connectionsClosed.inc({ reason: r }, 0);
  for (const r of REFUSAL_REASONS) m.connectionsRefused.inc({ reason: r }, 0);
  if (opts.redis) {
    m.rateLimitClusterWide.set(1);
    for (const w of ["rate_limit", "connection_cap"]) m.rateLimitFallbacks.inc({ what: w }, 0);
  }
  for (const s of RATE_SCOPES) m.rateLimited.inc({ scope: s }, 0);
  for (const s of ["start", "stop"]) m.typingBroadcasts.inc({ state: s }, 0);
  for (const s of ["online", "offline"]) m.presenceChanges.inc({ state: s }, 0);
  m.declareRoute(UNMATCHED_ROUTE.method, UNMATCHED_ROUTE.route);
  m.storeUp.set(1);
  m.draining.set(0);
  if (opts.maxConnections !== undefined) m.maxConnections.set(opts.maxConnections);
  return m;
}
