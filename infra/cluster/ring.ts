/**
 * nginx's consistent hash (`hash $key consistent`, ngx_http_upstream_hash_module.c) reproduced,
 * so that the launcher can hand each node a cookie value that nginx maps to it: the key that
 * pins a client to the node its session was placed on (local.conf.template).
 *
 * nginx puts 160 × weight points per server on a ring: for the server `host:port`, the first point
 * is crc32(host "\0" port prev) with prev = 0 (4 bytes, little-endian), each next one with prev =
 * the previous point; the points are sorted, and a key goes to the first point at or above
 * crc32(key), wrapping around. A `down` server keeps its points (nginx walks on to the next one).
 * startCluster checks the result against nginx itself, through /healthz.
 */
import zlib from "node:zlib";

export interface RingServer {
  /** As written in the upstream: `127.0.0.1:3001`. */
  server: string;
  weight?: number;
}

interface Point {
  hash: number;
  server: string;
}

/** The ring nginx builds for these servers, in upstream order. */
export function buildRing(servers: readonly RingServer[]): Point[] {
  const points: Point[] = [];
  for (const s of servers) {
    const colon = s.server.lastIndexOf(":");
    const host = colon >= 0 && /^\d+$/.test(s.server.slice(colon + 1)) ? s.server.slice(0, colon) : s.server;
    const port = colon >= 0 && host !== s.server ? s.server.slice(colon + 1) : "";
    const base = zlib.crc32(Buffer.concat([Buffer.from(host), Buffer.from([0]), Buffer.from(port)]));
    const prev = Buffer.alloc(4);
    for (let j = 0; j < 160 * (s.weight ?? 1); j++) {
      const hash = zlib.crc32(prev, base);
      points.push({ hash, server: s.server });
      prev.writeUInt32LE(hash, 0);
    }
  }
  points.sort((a, b) => a.hash - b.hash);
  // nginx keeps one point per distinct hash.
  return points.filter((p, i) => i === 0 || p.hash !== points[i - 1]!.hash);
}

/** The server a key goes to when every server is up. */
export function serverFor(ring: readonly Point[], key: string): string {
  const h = zlib.crc32(key);
  let lo = 0;
  let hi = ring.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ring[mid]!.hash < h) lo = mid + 1;
    else hi = mid;
  }
  return ring[lo % ring.length]!.server;
}

/** For each server, the first key of the form `<prefix><n>` that the ring maps to it. */
export function keysFor(servers: readonly RingServer[], prefix = "n"): Map<string, string> {
  const ring = buildRing(servers);
  const found = new Map<string, string>();
  for (let n = 0; found.size < servers.length && n < 1_000_000; n++) {
    const key = `${prefix}${n.toString(36)}`;
    const server = serverFor(ring, key);
    if (!found.has(server)) found.set(server, key);
  }
  if (found.size < servers.length) throw new Error("no sticky key found for every server");
  return found;
}
