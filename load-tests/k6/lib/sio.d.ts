/** Types of `sio.js` for the Node runner and tests (k6 reads the plain JavaScript). */

export declare const EIO_VERSION: "4";
export declare const EngineType: Readonly<{ OPEN: "0"; CLOSE: "1"; PING: "2"; PONG: "3"; MESSAGE: "4"; UPGRADE: "5"; NOOP: "6" }>;
export declare const PacketType: Readonly<{ CONNECT: 0; DISCONNECT: 1; EVENT: 2; ACK: 3; CONNECT_ERROR: 4; BINARY_EVENT: 5; BINARY_ACK: 6 }>;
export declare const PONG: "3";

export declare function socketUrl(baseUrl: string, path?: string): string;
export declare function encodeConnect(auth?: unknown, nsp?: string): string;
export declare function encodeEvent(name: string, args?: unknown[], ackId?: number, nsp?: string): string;
export declare function encodeAck(ackId: number, args?: unknown[], nsp?: string): string;
export declare function encodeDisconnect(nsp?: string): string;

export type Decoded =
  | { kind: "open"; data: { sid: string; pingInterval: number; pingTimeout: number; maxPayload?: number; upgrades?: string[] } }
  | { kind: "close" }
  | { kind: "ping"; data: string }
  | { kind: "pong"; data: string }
  | { kind: "noop" }
  | { kind: "connect"; nsp: string; data: { sid: string } | undefined }
  | { kind: "connect_error"; nsp: string; data: unknown; message: string }
  | { kind: "disconnect"; nsp: string }
  | { kind: "event"; nsp: string; id: number | undefined; name: string; args: unknown[] }
  | { kind: "ack"; nsp: string; id: number; args: unknown[] }
  | { kind: "invalid" | "unsupported"; reason: string; raw?: string };

export declare function decode(frame: string): Decoded;

/** The part of the browser WebSocket API the client needs. */
export interface WebSocketLike {
  readyState?: number;
  send(data: string): void;
  close(): void;
  addEventListener(type: "message", listener: (e: { data: unknown }) => void): void;
  addEventListener(type: "close", listener: () => void): void;
}

export interface SioClientOptions {
  auth?: unknown;
  nsp?: string;
  onConnect?(sid: string | undefined): void;
  onConnectError?(message: string, data: unknown): void;
  onEvent?(name: string, args: unknown[], ackId: number | undefined): void;
  onDisconnect?(reason: string): void;
}

export interface SioClient {
  sid: string | undefined;
  engineSid: string | undefined;
  connected: boolean;
  invalid: number;
  pendingAcks: number;
  /** Packets for another namespace than this client's, ignored by `feed()`. */
  otherNsp: number;
  /** Throws InvalidStateError when the transport's readyState is not OPEN; nothing is left pending then. */
  emit(name: string, payload?: unknown, ack?: (args: unknown[]) => void): number | undefined;
  cancelAck(id: number): boolean;
  /** Forgets every pending acknowledgement; returns their ids. */
  dropAcks(): number[];
  close(): void;
  feed(frame: string): Decoded;
  ack(id: number, args?: unknown[]): void;
  attach(): SioClient;
}

export declare function createSioClient(ws: Pick<WebSocketLike, "send" | "close"> & Partial<WebSocketLike>, opts?: SioClientOptions): SioClient;
