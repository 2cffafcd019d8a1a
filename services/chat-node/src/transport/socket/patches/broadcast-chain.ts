/**
 * socket.io-adapter's in-memory `Adapter.prototype.broadcast` is every local delivery of a room
 * broadcast: this node's own emits, and, through `super.broadcast`, the Redis adapters' handling of
 * other nodes' broadcasts. Two patches sit there, composed here once per process so that either
 * order of installation gives the same chain:
 *
 *   delivery filter (per Socket.IO server) -> direct write (optional) -> Socket.IO's own broadcast
 *
 * The filter sees each `newMessage` about to be delivered to a conversation's room and may drop it
 * (a seq this node already delivered: `core/delivery-ledger.ts`). It is keyed by the server, so two
 * nodes built in one process (tests) keep apart.
 */
import { Adapter, type BroadcastOptions } from "socket.io-adapter";
import { conversationOfRoom } from "../rooms.ts";

type Broadcast = Adapter["broadcast"];
/** What the node is told of each delivery to one conversation room. */
export interface DeliveryFilter {
  /** Whether a `newMessage` of this conversation and seq is delivered by this node. */
  newMessage(conversationId: string, seq: number): boolean;
  /** A typing transition being delivered (any node's): watched so that one lost in an outage does not stick. */
  typing(conversationId: string, userId: string, isTyping: boolean): void;
}

const own = Adapter.prototype.broadcast;
let inner: Broadcast = own;
let chained = false;
const filters = new WeakMap<object, DeliveryFilter>();

interface Packet {
  data?: unknown;
}

function install(): void {
  if (chained) return;
  chained = true;
  Adapter.prototype.broadcast = function broadcast(this: Adapter, packet: Packet, opts: BroadcastOptions): void {
    const filter = filters.get(this.nsp.server);
    if (filter && !admitted(filter, packet, opts)) return;
    inner.call(this, packet, opts);
  };
}

/** A `newMessage` or `typing` broadcast to one conversation room, told to the filter; false drops it. */
function admitted(filter: DeliveryFilter, packet: Packet, opts: BroadcastOptions): boolean {
  const data = packet.data;
  if (!Array.isArray(data) || opts.rooms.size !== 1 || (data[0] !== "newMessage" && data[0] !== "typing")) return true;
  const body = data[1] as { conversationId?: unknown; seq?: unknown; userId?: unknown; isTyping?: unknown } | undefined;
  const [room] = opts.rooms;
  if (typeof body?.conversationId !== "string" || conversationOfRoom(String(room)) !== body.conversationId) return true;
  if (data[0] === "typing") {
    if (typeof body.userId === "string" && typeof body.isTyping === "boolean") filter.typing(body.conversationId, body.userId, body.isTyping);
    return true;
  }
  return typeof body.seq !== "number" || filter.newMessage(body.conversationId, body.seq);
}

/** Puts the direct-write path under the chain (idempotent). */
export function useDirectBroadcast(make: (original: Broadcast) => Broadcast): void {
  install();
  if (inner === own) inner = make(own);
}

/** Filters the `newMessage` deliveries of one Socket.IO server (`io`). */
export function filterDeliveries(io: object, filter: DeliveryFilter): void {
  install();
  filters.set(io, filter);
}
