/**
 * Every place where the node reaches into socket.io, Engine.IO or ws beyond their public API, in one
 * folder, apart from the chat logic. Each pays for itself in the benchmark (docs/benchmark.md) and
 * records the upstream versions it was checked against: `test/patches.test.ts` fails when an
 * installed version differs, so an upgrade re-checks the patch before it ships, and the behaviour
 * tests (`test/direct-broadcast.test.ts`, `test/slow-consumer.test.ts`) fail when the shape moved.
 */
import { directWriteCount, installDirectBroadcast } from "./direct-broadcast.ts";
import { corkUntilTurnEnds } from "./cork.ts";
import { releaseHandshake, releaseUpgradeRequest } from "./memory.ts";
import { filterDeliveries } from "./broadcast-chain.ts";
import { connectionOpen, cutNow, outgoingBytes } from "./backlog.ts";

export { connectionOpen, corkUntilTurnEnds, cutNow, directWriteCount, filterDeliveries, installDirectBroadcast, outgoingBytes, releaseHandshake, releaseUpgradeRequest };

/** The packages each patch relies on, at the versions it was checked against. */
export const PATCHED_UPSTREAM = {
  "direct-broadcast": { "socket.io-adapter": "2.5.8", "engine.io": "6.6.12", ws: "8.21.3" },
  "broadcast-chain (delivery filter)": { "socket.io-adapter": "2.5.8", "@socket.io/redis-adapter": "8.3.0" },
  cork: { "engine.io": "6.6.12", ws: "8.21.3" },
  memory: { "socket.io": "4.8.4", "engine.io": "6.6.12" },
  "backlog (slow consumers)": { "engine.io": "6.6.12", ws: "8.21.3" },
} as const;
