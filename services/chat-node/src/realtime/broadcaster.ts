/**
 * What the node emits to rooms, in one place: REST and socket sends broadcast a stored message the
 * same way, typing and presence transitions likewise. Emits go through the adapter, so with Redis
 * they reach every node's sockets.
 */
import type { Server, Socket } from "socket.io";
import type { MessageData } from "@chat/protocol";
import type { Metrics } from "../metrics.ts";
import { roomOf } from "./rooms.ts";

export class Broadcaster {
  private readonly io: Server;
  private readonly metrics: Metrics;

  constructor(io: Server, metrics: Metrics) {
    this.io = io;
    this.metrics = metrics;
  }

  /** `newMessage` to every socket of the room, and to the sending socket when it has not joined it (the seed's confirmation). */
  newMessage(message: MessageData, sender?: Socket): void {
    const room = roomOf(message.conversationId);
    this.io.to(room).emit("newMessage", message);
    if (sender && !sender.rooms.has(room)) sender.emit("newMessage", message);
  }

  typing(conversationId: string, userId: string, isTyping: boolean, exceptSocketId: string): void {
    this.io.to(roomOf(conversationId)).except(exceptSocketId).emit("typing", { conversationId, userId, isTyping });
    this.metrics.typingBroadcasts.inc({ state: isTyping ? "start" : "stop" });
  }

  presence(conversationId: string, userId: string, online: boolean): void {
    this.io.to(roomOf(conversationId)).emit("presence", { conversationId, userId, online });
    this.metrics.presenceChanges.inc({ state: online ? "online" : "offline" });
  }
}
