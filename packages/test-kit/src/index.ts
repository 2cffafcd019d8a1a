/** `@chat/test-kit`: the common moves of the project's tests. */
export * from "@chat/process-kit";
export * from "./node.ts";
export * from "./clients.ts";
export * from "./redis.ts";
export * from "./tls.ts";
