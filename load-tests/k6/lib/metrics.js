/**
 * Every custom metric of the suite, declared once (k6 registers metrics in the init context and
 * refuses one name with two types). Time trends hold milliseconds, as k6's own
 * `http_req_duration`: thresholds and the summary read them in ms, k6's Prometheus remote write
 * converts them to seconds (`k6_e2e_latency_p99` = 0.012 is 12 ms). All are added to while the
 * test runs, so the remote-write series move live.
 */
import { Counter, Rate, Trend } from "k6/metrics";

// Connections (lib/session.js).
/** Handshake until Socket.IO's `40`, per successful attempt; tag `attempt`: initial | reconnect. */
export const sioConnect = new Trend("sio_connect", true);
/** One sample per attempt: connected and every join acknowledged ok. */
export const sioConnectOk = new Rate("sio_connect_ok");
/** Handshakes the server refused with `connect_error` (UNAUTHORIZED, UNAVAILABLE). */
export const sioConnectRefused = new Counter("sio_connect_refused");
/** Joined connections the server or the network closed (not the script). */
export const sioDisconnects = new Counter("sio_disconnects");
/** From losing (or dropping) a connection to being joined again with catch-up. */
export const reconnectMs = new Trend("reconnect", true);
/** One sample per loss: joined again (true) or given up / the run ended first (false). */
export const reconnectOk = new Rate("reconnect_ok");
/** A re-join with `sinceSeq` got every seq after it (missed, then REST pages when hasMore). */
export const catchUpComplete = new Rate("catch_up_complete");
/** A re-join after messages were sent to the room meanwhile brought at least one back. */
export const catchUpNonEmpty = new Rate("catch_up_nonempty");
export const missedRecovered = new Counter("missed_recovered");

// Messages (lib/session.js sends, lib/delivery.js checks).
export const messagesSent = new Counter("messages_sent");
/** Answered ok within SEND_TIMEOUT_MS, retries on a new connection included. */
export const sendOk = new Rate("send_ok");
/** From the first attempt of a send to its ok acknowledgement. */
export const sendAckMs = new Trend("send_ack", true);
export const sendRetries = new Counter("send_retries");
/** From the stamp in the message body to its arrival; tag `via`: live | catch_up. */
export const e2eLatency = new Trend("e2e_latency", true);
/** One sample per (socket, seq) it had to receive: true when it came within DELIVERY_TIMEOUT_MS. */
export const deliveryRatio = new Rate("delivery_ratio");
/** First arrival of a (socket, seq), live or by catch-up. */
export const messagesDelivered = new Counter("messages_delivered");
/** (socket, seq) pairs not delivered within DELIVERY_TIMEOUT_MS (or by the end of the run). */
export const messagesMissing = new Counter("messages_missing");
/** Arrivals of pairs already counted missing. */
export const messagesLate = new Counter("messages_late");
/** A live `newMessage` a connection had already received (the contract: once per socket). */
export const duplicateDeliveries = new Counter("duplicate_deliveries");

// Typing (lib/typing.js).
export const typingSent = new Counter("typing_sent");
export const typingAckMs = new Trend("typing_ack", true);
export const typingAckOk = new Rate("typing_ack_ok");
export const typingReceived = new Counter("typing_broadcasts_received");
/** Per (receiver, other member): saw `isTyping: true`, and `false` last. */
export const typingPairsComplete = new Rate("typing_pairs_complete");
/** From the scheduled stopTyping to each `isTyping: false` it causes. */
export const typingStopDelay = new Trend("typing_stop_delay", true);
