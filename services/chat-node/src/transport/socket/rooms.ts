/** Room names: a prefix keeps conversation rooms apart from Socket.IO's per-socket rooms. */
export const roomOf = (conversationId: string) => `c:${conversationId}`;
export const conversationOfRoom = (room: string) => (room.startsWith("c:") ? room.slice(2) : undefined);
