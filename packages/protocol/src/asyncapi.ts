/**
 * The Socket.IO interface (CONTRACT.md §4) as an AsyncAPI 3 document, built from this package's
 * event names and schemas: `node packages/protocol/scripts/asyncapi.ts` writes docs/asyncapi.yaml,
 * and a test fails when the checked-in file differs from what this builds.
 */
import type { TSchema } from "@sinclair/typebox";
import type { ClientEvent, ServerEvent } from "./events.ts";
import { Limits } from "./limits.ts";
import { JoinConversationPayload, LeaveConversationPayload, SendMessagePayload, StopTypingPayload, TypingPayload } from "./schemas.ts";
import { JoinAckSchema, MessageDataSchema, PlainAckSchema, PresenceEventSchema, SendAckSchema, TypingEventSchema } from "./wire-schemas.ts";

/** A TypeBox schema as plain JSON Schema (TypeBox's symbol keys dropped). */
const json = (schema: TSchema): unknown => JSON.parse(JSON.stringify(schema));

const clientEvents: Record<ClientEvent, { summary: string; payload: TSchema; ack: TSchema }> = {
  joinConversation: {
    summary: `Joins the conversation's room on every node; the ack holds the messages after sinceSeq (at most ${Limits.missedMax}, ascending).`,
    payload: JoinConversationPayload,
    ack: JoinAckSchema,
  },
  leaveConversation: { summary: "Leaves the room.", payload: LeaveConversationPayload, ack: PlainAckSchema },
  sendMessage: {
    summary: "Stores the message, then emits newMessage to every socket in the room, the sender's included. A repeated clientMessageId answers the original and broadcasts nothing.",
    payload: SendMessagePayload,
    ack: SendAckSchema,
  },
  typing: { summary: "Starts or extends the user's typing window (TYPING_TIMEOUT_MS).", payload: TypingPayload, ack: PlainAckSchema },
  stopTyping: { summary: "Ends typing at once.", payload: StopTypingPayload, ack: PlainAckSchema },
};

const serverEvents: Record<ServerEvent, { summary: string; payload: TSchema }> = {
  newMessage: { summary: "A stored message, once per socket in the room.", payload: MessageDataSchema },
  typing: { summary: "A user starts (isTyping: true, once per window) or stops typing in the room.", payload: TypingEventSchema },
  presence: { summary: "A user's first socket joined the room, cluster-wide, or its last one left.", payload: PresenceEventSchema },
};

/** Message keys of the document: the event name, and `<name>Ack` / `<name>Event` where names collide. */
const serverKey = (name: ServerEvent) => (name in clientEvents ? `${name}Event` : name);

/** The AsyncAPI 3.0 document of the Socket.IO events, as a plain object. */
export function asyncApiDocument(version = "1.0.0"): Record<string, unknown> {
  const channelRef = { $ref: "#/channels/socket" };
  const messages: Record<string, unknown> = {};
  const channelMessages: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  const add = (key: string, name: string, summary: string, payload: TSchema) => {
    messages[key] = { name, summary, contentType: "application/json", payload: json(payload) };
    channelMessages[key] = { $ref: `#/components/messages/${key}` };
  };
  for (const [name, e] of Object.entries(clientEvents) as [ClientEvent, (typeof clientEvents)[ClientEvent]][]) {
    add(name, name, e.summary, e.payload);
    add(`${name}Ack`, `${name} acknowledgement`, "The acknowledgement callback's argument: { ok: true, ... } or { ok: false, error: { code, message } }.", e.ack);
    operations[name] = {
      action: "receive",
      summary: `The node receives ${name}.`,
      channel: channelRef,
      messages: [{ $ref: `#/channels/socket/messages/${name}` }],
      reply: { channel: channelRef, messages: [{ $ref: `#/channels/socket/messages/${name}Ack` }] },
    };
  }
  for (const [name, e] of Object.entries(serverEvents) as [ServerEvent, (typeof serverEvents)[ServerEvent]][]) {
    const key = serverKey(name);
    add(key, name, e.summary, e.payload);
    operations[key] = { action: "send", summary: `The node emits ${name}.`, channel: channelRef, messages: [{ $ref: `#/channels/socket/messages/${key}` }] };
  }
  return {
    asyncapi: "3.0.0",
    info: {
      title: "Chat cluster Socket.IO events",
      version,
      description:
        "Socket.IO v4 events of a chat node (CONTRACT.md §4), generated from packages/protocol. Every client event takes an optional acknowledgement callback as its last argument. Operations are from the node's point of view. Do not edit: run `node packages/protocol/scripts/asyncapi.ts`.",
    },
    defaultContentType: "application/json",
    servers: {
      node: {
        host: "localhost:3001",
        protocol: "ws",
        pathname: "/socket.io/",
        description: "A node, or nginx in front of the cluster; Socket.IO over WebSocket or HTTP long-polling.",
        security: [{ $ref: "#/components/securitySchemes/jwt" }],
      },
    },
    channels: {
      socket: {
        address: "/socket.io/",
        title: "One Socket.IO connection (default namespace)",
        servers: [{ $ref: "#/servers/node" }],
        messages: channelMessages,
      },
    },
    operations,
    components: {
      messages,
      securitySchemes: {
        jwt: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description: 'HS256 JWT in the handshake: io(url, { auth: { token } }). Refused with connect_error "UNAUTHORIZED".',
        },
      },
    },
  };
}
