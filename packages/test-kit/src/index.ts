/** `@chat/test-kit`: the common moves of the project's tests. */
export * from "./processes.ts";
export * from "./node.ts";
export * from "./clients.ts";
export * from "./redis.ts";
