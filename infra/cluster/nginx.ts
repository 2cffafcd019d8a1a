/**
 * The local cluster's nginx: infra/nginx/local.conf.template rendered into a directory of its own
 * and run by any user (every path under that directory). The upstream list is the launcher's to
 * change: reload() renders it again, checks it with `nginx -t`, sends the master SIGHUP and waits
 * until the new workers answer. nginx then serves new connections with the new list while the
 * retiring workers keep the connections they hold (WebSockets included) until those close.
 *
 * Whether a reload took is read from a status server on its own loopback port, which answers the
 * generation of the configuration it was started with (the load balancer's port stays the chat's).
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { REPO_ROOT, startProcess, type Proc } from "@chat/process-kit";
import { keysFor } from "./ring.ts";

/** One node in the upstreams. */
export interface UpstreamServer {
  port: number;
  /** Share of the new sessions placed (`chat_place`'s weight, 1 to 100); 1 by default. */
  weight?: number;
  /** `down`: no new request goes there (a node about to drain). */
  down?: boolean;
}

export interface RenderOptions {
  listen: string;
  /** The nodes, all weight 1 (shorthand for `servers`). */
  nodePorts?: number[];
  servers?: UpstreamServer[];
  workers?: number;
  webRoot?: string;
  /** `host:port` of the status server answering `GET /generation`; none when absent. */
  statusListen?: string;
  generation?: number;
  /** Sticky keys of nodes that are gone, besides those `servers` marks down: their clients are placed afresh. */
  retiredKeys?: readonly string[];
  /** The nodes run the insecure demo (DEV_INSECURE_TOKENS=1): `/dev/` is forwarded; otherwise nginx answers it 404 itself. */
  devTokens?: boolean;
  /** A TLS listener beside the plain one, same routes (https://, wss://). */
  tls?: TlsListen;
}

/** nginx's TLS listener: `host:port`, and the PEM certificate (chain) and key files it serves. */
export interface TlsListen {
  listen: string;
  certFile: string;
  keyFile: string;
}

/**
 * The TLS lines of the server block: the same routes on a second, TLS listener, so that
 * `X-Forwarded-Proto` ($scheme) says https there. TLS 1.2 and 1.3 only; no HTTP/2, which nginx
 * does not carry WebSockets over.
 */
export function tlsLines(tls: TlsListen | undefined): string {
  if (!tls) return "";
  const quote = (p: string) => JSON.stringify(path.resolve(p));
  return [
    `        listen ${tls.listen} ssl;`,
    `        ssl_certificate ${quote(tls.certFile)};`,
    `        ssl_certificate_key ${quote(tls.keyFile)};`,
    "        ssl_protocols TLSv1.2 TLSv1.3;",
    "        ssl_session_cache shared:chat_tls:1m;",
    "        ssl_session_timeout 1h;",
  ].join("\n");
}

const NGINX_DIR = path.join(REPO_ROOT, "infra/nginx");
const WEB_ROOT = path.join(REPO_ROOT, "services/web/dist");

function minimalMimeTypes(): string {
  return `types {
    text/html html htm;
    text/css css;
    application/javascript js mjs;
    application/json json map;
    image/svg+xml svg;
    image/png png;
    image/x-icon ico;
    font/woff2 woff2;
}
`;
}

const address = (port: number) => `127.0.0.1:${port}`;

/** The cookie value (`chat_sticky`) that the `chat` upstream's consistent hash maps to each node's port. */
export function stickyKeys(ports: readonly number[]): Map<number, string> {
  const byServer = keysFor(ports.map((p) => ({ server: address(p) })));
  return new Map(ports.map((p) => [p, byServer.get(address(p))!]));
}

/** `server` lines: no passive failure state (local.conf.template says why); `weighted` for chat_place. */
export function upstreamLines(servers: readonly UpstreamServer[], weighted: boolean): string {
  return servers
    .map((s) => {
      const weight = weighted ? Math.max(1, Math.min(100, Math.round(s.weight ?? 1))) : 1;
      return `        server ${address(s.port)} max_fails=0${weight === 1 ? "" : ` weight=${weight}`}${s.down ? " down" : ""};`;
    })
    .join("\n");
}

/** Renders infra/nginx/local.conf.template for these nodes into `dir`; returns the config's path. Exported for the config tests. */
export function renderNginx(dir: string, o: RenderOptions): string {
  const servers: UpstreamServer[] = o.servers ?? (o.nodePorts ?? []).map((port) => ({ port }));
  if (servers.length === 0) throw new Error("renderNginx: no upstream server");
  const keys = stickyKeys(servers.map((sv) => sv.port));
  const retired = [...new Set([...servers.filter((sv) => sv.down).map((sv) => keys.get(sv.port)!), ...(o.retiredKeys ?? [])])];
  fs.mkdirSync(path.join(dir, "tmp"), { recursive: true });
  for (const f of ["sticky.conf", "chat-common.conf"]) fs.copyFileSync(path.join(NGINX_DIR, f), path.join(dir, f));
  const mime = "/etc/nginx/mime.types";
  fs.writeFileSync(path.join(dir, "mime.types"), fs.existsSync(mime) ? fs.readFileSync(mime) : minimalMimeTypes());
  const status = o.statusListen
    ? `
    # The launcher's view of nginx (infra/cluster/nginx.ts): which configuration the workers run.
    server {
        listen ${o.statusListen};
        access_log off;
        location = /generation {
            default_type text/plain;
            return 200 "${o.generation ?? 0}\\n";
        }
        location / {
            return 404;
        }
    }
`
    : "";
  const vars: Record<string, string> = {
    WORKERS: String(o.workers ?? 1),
    PREFIX: dir,
    INCLUDE: dir,
    LISTEN: o.listen,
    WEB_ROOT: o.webRoot ?? WEB_ROOT,
    SERVERS: upstreamLines(servers, false),
    PLACE_SERVERS: upstreamLines(servers, true),
    ANSWERED_KEYS: servers.map((sv) => `        "~(?:^|, )127\\.0\\.0\\.1:${sv.port}$" ${keys.get(sv.port)};`).join("\n"),
    RETIRED_KEYS: retired.map((k) => `        ${k} 1;`).join("\n"),
    NODES: String(servers.length),
    TLS: tlsLines(o.tls),
    STATUS_SERVER: status,
    DEV_LOCATION: o.devTokens
      ? `
        # The nodes run the insecure demo (DEV_INSECURE_TOKENS=1, no JWT_SECRET given): POST /dev/token for the page.
        location /dev/ {
            proxy_pass http://chat;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Request-Id $request_id;
            proxy_hide_header X-Request-Id;
        }`
      : `
        # No demo mode: the development token route is never reached through the load balancer.
        location /dev/ {
            default_type application/json;
            return 404 '{"error":{"code":"NOT_FOUND","message":"no such route"}}';
        }`,
  };
  const template = fs.readFileSync(path.join(NGINX_DIR, "local.conf.template"), "utf8");
  const conf = template.replace(/\{\{([A-Z_]+)\}\}/g, (_, k: string) => {
    const v = vars[k];
    if (v === undefined) throw new Error(`local.conf.template: no value for {{${k}}}`);
    return v;
  });
  const file = path.join(dir, "nginx.conf");
  // Replaced in one step: the master reads it on SIGHUP, never half-written.
  fs.writeFileSync(`${file}.new`, conf);
  fs.renameSync(`${file}.new`, file);
  // Workers run as `nobody` when the master is root: they must reach the temp paths.
  fs.chmodSync(dir, 0o755);
  return file;
}

export interface NginxHandle {
  pid: number;
  workDir: string;
  /** The configuration generation the workers answer now. */
  generation: number;
  /** The `chat_sticky` value that pins a client to the node on each port, now. */
  stickyKey(port: number): string | undefined;
  accessLog(): string;
  errorLog(): string;
  /** Renders the upstream again and reloads; resolves once the new workers answer. */
  reload(servers: readonly UpstreamServer[]): Promise<void>;
  stop(): Promise<void>;
  proc: Proc;
}

export interface NginxLaunch {
  nginxBin: string;
  dir: string;
  listen: string;
  statusPort: number;
  servers: readonly UpstreamServer[];
  webRoot?: string;
  /** See RenderOptions.devTokens. */
  devTokens?: boolean;
  tls?: TlsListen;
  onStart?: (p: Proc) => void;
}

async function generationOf(statusUrl: string): Promise<number | undefined> {
  try {
    const res = await fetch(`${statusUrl}/generation`, { signal: AbortSignal.timeout(1000) });
    return res.ok ? Number((await res.text()).trim()) : undefined;
  } catch {
    return undefined;
  }
}

export async function startNginx(o: NginxLaunch): Promise<NginxHandle> {
  const statusListen = `127.0.0.1:${o.statusPort}`;
  const statusUrl = `http://${statusListen}`;
  const read = (f: string) => (fs.existsSync(path.join(o.dir, f)) ? fs.readFileSync(path.join(o.dir, f), "utf8") : "");
  let generation = 1;
  // Every key handed out, by port: a client may still hold the key of a node that is gone.
  const issued = new Map<number, Set<string>>();
  let current = new Map<number, string>();
  const render = (servers: readonly UpstreamServer[], gen: number) => {
    const ports = new Set(servers.map((sv) => sv.port));
    const retiredKeys = [...issued].filter(([port]) => !ports.has(port)).flatMap(([, keys]) => [...keys]);
    const file = renderNginx(o.dir, { listen: o.listen, servers: [...servers], webRoot: o.webRoot, statusListen, generation: gen, retiredKeys, devTokens: o.devTokens ?? false, tls: o.tls });
    current = stickyKeys(servers.map((sv) => sv.port));
    for (const [port, key] of current) issued.set(port, new Set([...(issued.get(port) ?? []), key]));
    return file;
  };
  const conf = render(o.servers, generation);
  const proc = startProcess(o.nginxBin, ["-p", o.dir, "-c", conf, "-e", path.join(o.dir, "error.log"), "-g", "daemon off;"]);
  o.onStart?.(proc);
  const waitGeneration = async (gen: number, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (proc.proc.exitCode !== null || proc.proc.signalCode !== null) throw new Error(`nginx exited:\n${proc.output()}\n${read("error.log").slice(-2000)}`);
      if ((await generationOf(statusUrl)) === gen) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`nginx did not serve configuration generation ${gen} within ${timeoutMs} ms:\n${read("error.log").slice(-2000)}`);
  };
  await waitGeneration(generation, 15_000);
  let reloading = Promise.resolve();
  const handle: NginxHandle = {
    pid: proc.pid,
    workDir: o.dir,
    get generation() {
      return generation;
    },
    stickyKey: (port) => current.get(port),
    accessLog: () => read("access.log"),
    errorLog: () => read("error.log"),
    reload(servers) {
      // One reload at a time, in the order asked: each renders the file the next one replaces.
      const run = reloading.then(async () => {
        const gen = generation + 1;
        const file = render(servers, gen);
        const test = spawnSync(o.nginxBin, ["-t", "-q", "-p", o.dir, "-c", file, "-e", path.join(o.dir, "error.log")], { encoding: "utf8" });
        if (test.status !== 0) throw new Error(`nginx -t refused the new configuration:\n${test.stderr}`);
        process.kill(proc.pid, "SIGHUP");
        await waitGeneration(gen, 15_000);
        generation = gen;
      });
      reloading = run.catch(() => undefined);
      return run;
    },
    async stop() {
      // Graceful (SIGQUIT) first; WebSockets still open would hold it, so fast shutdown (SIGTERM:
      // every connection closed at once) follows, and SIGKILL only if even that hangs.
      for (const [signal, waitMs] of [["SIGQUIT", 3000], ["SIGTERM", 3000], ["SIGKILL", 5000]] as const) {
        if (proc.proc.exitCode !== null || proc.proc.signalCode !== null) return;
        proc.proc.kill(signal);
        await Promise.race([proc.exited, new Promise((r) => setTimeout(r, waitMs))]);
      }
    },
    proc,
  };
  return handle;
}
