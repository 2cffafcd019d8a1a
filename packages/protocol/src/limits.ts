/** Hard limits of the protocol. Per-node tunables (MAX_MESSAGE_LENGTH, rate limits) live in the node's config. */
export const Limits = {
  idMaxLength: 128,
  clientMessageIdMaxLength: 64,
  titleMaxLength: 200,
  membersMax: 1000,
  /** `GET /conversations`: the newest-activity `limit` of the caller's conversations. */
  conversationsDefault: 100,
  conversationsMax: 1000,
  pageDefault: 50,
  pageMax: 200,
  missedMax: 200,
  defaultMaxMessageLength: 4000,
} as const;

/**
 * `GET /limits`: what one node accepts, for clients to size their inputs (the contract names
 * `MAX_MESSAGE_LENGTH` and `TYPING_TIMEOUT_MS` but gives clients no way to read them).
 */
export interface ServerLimits {
  /** Characters (UTF-16 code units) in a message: the node's MAX_MESSAGE_LENGTH. */
  maxMessageLength: number;
  /** How long a `typing` lasts without another: the node's TYPING_TIMEOUT_MS. */
  typingTimeoutMs: number;
  clientMessageIdMaxLength: number;
  /** User and conversation ids. */
  idMaxLength: number;
  titleMaxLength: number;
  membersMax: number;
  /** `limit` of a history page. */
  pageMax: number;
  /** Messages in `joinConversation`'s `missed`. */
  missedMax: number;
  /** Sockets one user may hold (MAX_CONNECTIONS_PER_USER); absent from older nodes. */
  maxConnectionsPerUser?: number;
  /**
   * The per-user rate limits, by scope (`send`, `join`, ...): `perSec` tokens refill each second up
   * to `burst`. `clusterWide`: the budget is shared by every node (Redis); `disabled`: none apply
   * (RATE_LIMIT_DISABLED). Absent from older nodes.
   */
  rateLimits?: { disabled: boolean; clusterWide: boolean; scopes: Record<string, { perSec: number; burst: number }> };
}
