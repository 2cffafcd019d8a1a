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
