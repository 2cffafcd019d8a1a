/**
 * The seed document's "Backend Implementation Example" (Node.js + Express + Socket.IO), kept as
 * close to the text as TypeScript allows: the benchmark's peer to beat. No authentication (a token
 * in the handshake is ignored), no persistence, no adapter, `senderId` taken from the payload,
 * `Date.now()` as the message id and a timer per typing event, all as the seed has them. The
 * seed's handlers take no acknowledgement callback, so none is answered.
 *
 * Run: `node load-tests/runner/src/peers/seed-reference.ts` (PORT, default 3001).
 */
import express from "express";
import http from "node:http";
import { Server } from "socket.io";

const app = express();
const server = http.createServer(app);

// Configure CORS for Socket.IO
const io = new Server(server, {
  cors: {
    origin: "http://localhost:3000", // Your frontend URL
    methods: ["GET", "POST"],
  },
});

interface SendPayload {
  conversationId: string;
  senderId: string;
  message: string;
}

// Handle connections
io.on("connection", (socket) => {
  console.log("User connected:", socket.id);

  // Join conversation
  socket.on("joinConversation", ({ conversationId }: { conversationId: string }) => {
    void socket.join(conversationId);
    console.log(`User ${socket.id} joined conversation ${conversationId}`);
  });

  // Leave conversation
  socket.on("leaveConversation", ({ conversationId }: { conversationId: string }) => {
    void socket.leave(conversationId);
    console.log(`User ${socket.id} left conversation ${conversationId}`);
  });

  // Send message
  socket.on("sendMessage", ({ conversationId, senderId, message }: SendPayload) => {
    const messageData = {
      id: Date.now().toString(),
      conversationId,
      senderId,
      message,
      timestamp: new Date().toISOString(),
    };

    // Broadcast to all users in the conversation
    io.to(conversationId).emit("newMessage", messageData);
  });

  // Typing indicator
  socket.on("typing", ({ conversationId, userId }: { conversationId: string; userId: string }) => {
    socket.to(conversationId).emit("typing", { userId, isTyping: true });

    // Clear typing indicator after 3 seconds
    setTimeout(() => {
      socket.to(conversationId).emit("typing", { userId, isTyping: false });
    }, 3000);
  });

  // Handle disconnection
  socket.on("disconnect", () => {
    console.log("User disconnected:", socket.id);
  });
});

const PORT = process.env.PORT || 3001;
server.listen(PORT, () => {
  console.log(`Socket.IO server running on port ${PORT}`);
});
