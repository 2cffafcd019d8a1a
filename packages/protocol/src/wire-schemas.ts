/**
 * JSON Schemas of what the node sends (the interfaces of message.ts, acks.ts and errors.ts), for the
 * machine-readable documents: OpenAPI (served by the node) and AsyncAPI (docs/asyncapi.yaml). The
 * type checks at the end fail to compile when a schema and its interface part ways.
 */
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { ERROR_CODES, type ErrorBody } from "./errors.ts";
import type { Conversation, MessageData, MessagePage, PresenceEvent, TypingEvent } from "./message.ts";
import { ClientMessageId, Id } from "./schemas.ts";

const closed = { additionalProperties: false } as const;
const IsoTime = Type.String({ format: "date-time" });

export const ErrorCodeSchema = Type.Union(ERROR_CODES.map((c) => Type.Literal(c)), { description: "One of the contract's error codes." });
export const ErrorBodySchema = Type.Object(
  { code: ErrorCodeSchema, message: Type.String(), retryAfter: Type.Optional(Type.Number({ description: "Seconds until a rate-limited caller may try again." })) },
  closed,
);
/** REST error answers: `{ error: { code, message } }`. */
export const ErrorResponseSchema = Type.Object({ error: ErrorBodySchema }, closed);

export const MessageDataSchema = Type.Object(
  {
    id: Type.String({ description: "Unique cluster-wide." }),
    conversationId: Id,
    senderId: Id,
    message: Type.String({ minLength: 1 }),
    timestamp: IsoTime,
    seq: Type.Integer({ minimum: 1, description: "1, 2, 3, ... per conversation: no gap, no repeat." }),
    clientMessageId: Type.Optional(ClientMessageId),
  },
  closed,
);
export const ConversationSchema = Type.Object(
  { id: Id, title: Type.String(), members: Type.Array(Id), createdAt: IsoTime, lastSeq: Type.Integer({ minimum: 0 }), lastActivityAt: IsoTime },
  closed,
);
export const MessagePageSchema = Type.Object({ messages: Type.Array(MessageDataSchema), hasMore: Type.Boolean() }, closed);
export const TypingEventSchema = Type.Object({ conversationId: Id, userId: Id, isTyping: Type.Boolean() }, closed);
export const PresenceEventSchema = Type.Object({ conversationId: Id, userId: Id, online: Type.Boolean() }, closed);

/** Acknowledgements (CONTRACT.md §4): `{ ok: true, ... }` or `{ ok: false, error }`. */
export const AckErrorSchema = Type.Object({ ok: Type.Literal(false), error: ErrorBodySchema }, closed);
const ackOf = (fields: Record<string, TSchema>) => Type.Union([Type.Object({ ok: Type.Literal(true), ...fields }), AckErrorSchema]);
export const JoinAckSchema = ackOf({
  conversationId: Id,
  lastSeq: Type.Integer({ minimum: 0 }),
  missed: Type.Optional(Type.Array(MessageDataSchema)),
  hasMore: Type.Optional(Type.Boolean()),
});
export const SendAckSchema = ackOf({ message: MessageDataSchema, duplicate: Type.Optional(Type.Boolean()) });
export const PlainAckSchema = ackOf({});

/** `GET /limits`; open, since a newer node may add fields. */
export const ServerLimitsSchema = Type.Object({
  maxMessageLength: Type.Integer(),
  typingTimeoutMs: Type.Integer(),
  clientMessageIdMaxLength: Type.Integer(),
  idMaxLength: Type.Integer(),
  titleMaxLength: Type.Integer(),
  membersMax: Type.Integer(),
  pageMax: Type.Integer(),
  missedMax: Type.Integer(),
  maxConnectionsPerUser: Type.Optional(Type.Integer()),
  rateLimits: Type.Optional(Type.Object({}, { additionalProperties: true })),
});

// Compile-time agreement of each schema with its interface, both ways.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const agree = <T extends true>(_: T) => undefined;
agree<Same<Static<typeof MessageDataSchema>, MessageData>>(true);
agree<Same<Static<typeof ConversationSchema>, Conversation>>(true);
agree<Same<Static<typeof MessagePageSchema>, MessagePage>>(true);
agree<Same<Static<typeof TypingEventSchema>, TypingEvent>>(true);
agree<Same<Static<typeof PresenceEventSchema>, PresenceEvent>>(true);
agree<Same<Static<typeof ErrorBodySchema>, ErrorBody>>(true);
