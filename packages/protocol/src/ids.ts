/**
 * A fresh `clientMessageId`: 32 hex characters (the contract allows up to 64), the first 12 the
 * time in milliseconds and the other 20 random (80 bits), so that a client's ids sort by the time
 * they were made. The stores index `(conversationId, senderId, clientMessageId)` to keep sends
 * idempotent, and an index fed random keys writes a page of its own for nearly every message once
 * it is large: with SQLite at 200,000 messages a checkpoint took 27 ms with random ids against 10 ms
 * with these (docs/stores.md). Uses `getRandomValues` rather than `randomUUID`, which browsers only
 * offer on secure origins and the demo page may be served over plain http on a LAN address.
 */
export function newClientMessageId(now = Date.now()): string {
  const bytes = new Uint8Array(10);
  globalThis.crypto.getRandomValues(bytes);
  let hex = Math.max(0, Math.floor(now)).toString(16).padStart(12, "0").slice(-12);
  for (const b of bytes) hex += b.toString(16).padStart(2, "0");
  return hex;
}
