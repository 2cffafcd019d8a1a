/**
 * Payload schemas: one TypeBox source yields both the TypeScript types and the JSON Schema that
 * validates every input at runtime, on both transports. Objects are closed
 * (`additionalProperties: false`), so an unknown field, `__proto__` or `constructor` is refused.
 *
 * Lengths are in UTF-16 code units, as JavaScript's `length` and HTML's `maxlength` count them.
 * Every string must be well-formed UTF-16 (the `text` format): a lone surrogate cannot be stored
 * as UTF-8, so SQLite and MongoDB would keep U+FFFD in its place; the message broadcast would
 * differ from the one stored, and two different `clientMessageId`s would become one.
 */
import { FormatRegistry, Type, type Static, type TSchema } from "@sinclair/typebox";
import { Limits } from "./limits.ts";

/** The name of the well-formed UTF-16 format, registered once with TypeBox. */
export const TEXT_FORMAT = "text";
if (!FormatRegistry.Has(TEXT_FORMAT)) FormatRegistry.Set(TEXT_FORMAT, (value) => value.isWellFormed());

const strict = { additionalProperties: false } as const;
const text = { format: TEXT_FORMAT } as const;

/** A conversation or user id: 1 to 128 characters. */
export const Id = Type.String({ minLength: 1, maxLength: Limits.idMaxLength, ...text });
export const ClientMessageId = Type.String({ minLength: 1, maxLength: Limits.clientMessageIdMaxLength, ...text });
/** A sequence number as clients send it: a non-negative integer. */
export const Seq = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
/**
 * Message text. Only the floor is here: the ceiling is the node's MAX_MESSAGE_LENGTH, and going over
 * it answers PAYLOAD_TOO_LARGE rather than INVALID_PAYLOAD.
 */
export const MessageText = Type.String({ minLength: 1, ...text });

export const JoinConversationPayload = Type.Object({ conversationId: Id, sinceSeq: Type.Optional(Seq) }, strict);
export type JoinConversationPayload = Static<typeof JoinConversationPayload>;

export const LeaveConversationPayload = Type.Object({ conversationId: Id }, strict);
export type LeaveConversationPayload = Static<typeof LeaveConversationPayload>;

export const SendMessagePayload = Type.Object(
  {
    conversationId: Id,
    message: MessageText,
    clientMessageId: Type.Optional(ClientMessageId),
    senderId: Type.Optional(Id),
  },
  strict,
);
export type SendMessagePayload = Static<typeof SendMessagePayload>;

export const TypingPayload = Type.Object({ conversationId: Id, userId: Type.Optional(Id) }, strict);
export type TypingPayload = Static<typeof TypingPayload>;

export const StopTypingPayload = Type.Object({ conversationId: Id }, strict);
export type StopTypingPayload = Static<typeof StopTypingPayload>;

/** REST `POST /conversations`. */
export const CreateConversationBody = Type.Object(
  {
    members: Type.Array(Id, { minItems: 1, maxItems: Limits.membersMax }),
    title: Type.Optional(Type.String({ maxLength: Limits.titleMaxLength, ...text })),
  },
  strict,
);
export type CreateConversationBody = Static<typeof CreateConversationBody>;

/** REST `POST /conversations/:id/messages`. */
export const PostMessageBody = Type.Object(
  { message: MessageText, clientMessageId: Type.Optional(ClientMessageId), senderId: Type.Optional(Id) },
  strict,
);
export type PostMessageBody = Static<typeof PostMessageBody>;

const Digits = Type.String({ pattern: "^[0-9]{1,15}$" });
/** REST history query, as strings the way they arrive in a URL. */
export const HistoryQuery = Type.Object(
  { limit: Type.Optional(Digits), before: Type.Optional(Digits), after: Type.Optional(Digits) },
  strict,
);
export type HistoryQuery = Static<typeof HistoryQuery>;

/** REST `GET /conversations` query. */
export const ConversationsQuery = Type.Object({ limit: Type.Optional(Digits) }, strict);
export type ConversationsQuery = Static<typeof ConversationsQuery>;

/** Every schema by name, for the validator cache. */
export const Schemas = {
  JoinConversationPayload,
  LeaveConversationPayload,
  SendMessagePayload,
  TypingPayload,
  StopTypingPayload,
  CreateConversationBody,
  PostMessageBody,
  HistoryQuery,
  ConversationsQuery,
} satisfies Record<string, TSchema>;
