/**
 * `@chat/protocol`: the contract in code. Server, SDK, web page and load tests import it, so a
 * protocol change breaks them at compile time.
 */
export * from "./errors.ts";
export * from "./events.ts";
export * from "./limits.ts";
export * from "./schemas.ts";
export * from "./message.ts";
export * from "./acks.ts";
export * from "./validate.ts";
export * from "./ids.ts";
export * from "./wire-schemas.ts";
