import { Limits } from "@chat/protocol/limits";
import { ChatError } from "./errors.ts";

/**
 * The SDK's own check of a send, mirroring the node's (the protocol's schemas and the node's
 * MAX_MESSAGE_LENGTH), so that input the SDK can judge is refused before anything is stored or
 * sent, with the code the node would answer. Undefined when the send may go out.
 */
export function checkOutgoing(conversationId: unknown, message: unknown, clientMessageId: unknown, maxMessageLength: number): ChatError | undefined {
  const isText = (v: unknown, max: number): v is string => typeof v === "string" && v.length >= 1 && v.length <= max && v.isWellFormed();
  if (!isText(conversationId, Limits.idMaxLength)) {
    return new ChatError("INVALID_PAYLOAD", `conversationId must be 1 to ${Limits.idMaxLength} characters`);
  }
  if (clientMessageId !== undefined && !isText(clientMessageId, Limits.clientMessageIdMaxLength)) {
    return new ChatError("INVALID_PAYLOAD", `clientMessageId must be 1 to ${Limits.clientMessageIdMaxLength} characters`);
  }
  if (typeof message !== "string" || message.length === 0) return new ChatError("INVALID_PAYLOAD", "message must be a non-empty string");
  if (!message.isWellFormed()) return new ChatError("INVALID_PAYLOAD", "message must be well-formed UTF-16");
  // The node's wording ("at most N"), which pages parse to lower their input's maxlength.
  if (message.length > maxMessageLength) return new ChatError("PAYLOAD_TOO_LARGE", `message: at most ${maxMessageLength} characters`);
  return undefined;
}
