/**
 * The deployment files stay correct by construction (no Docker engine here): docker-compose.yml
 * sets only variables the node reads, mounts files that exist, and passes `docker-compose config`;
 * both nginx configs pass `nginx -t` (the compose one as compose-nginx.sh renders it, with one
 * upstream per replica address), and a bad compose nginx setting stops it naming the setting. The local cluster's nginx also runs here in front
 * of fake nodes: /metrics is not published, and a POST is passed to another node only when it was
 * never sent (the compose config has the same retry policy, by text).
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { parse } from "yaml";
import { CHAT_NODE_OPTIONS, REPO_ROOT, eventually, freePort, startProcess, stopAll, tempDir } from "@chat/test-kit";
import { CONFIG_VARIABLES } from "../../src/config.ts";
import { renderNginx } from "../../../../infra/cluster/cluster.ts";

interface Service {
  environment?: Record<string, string> | string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: unknown;
  ports?: string[];
  container_name?: string;
  profiles?: string[];
  command?: string[];
  build?: { dockerfile: string };
  user?: string;
}
const compose = parse(fs.readFileSync(path.join(REPO_ROOT, "docker-compose.yml"), "utf8")) as { services: Record<string, Service> };

function envNames(s: Service): string[] {
  const env = s.environment ?? {};
  return Array.isArray(env) ? env.map((e) => e.split("=")[0]!) : Object.keys(env);
}

function nginxBin(): string | undefined {
  return ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"].find((p) => fs.existsSync(p));
}

test("the chat service sets only variables of the node's config schema", () => {
  const chat = compose.services.chat;
  assert.ok(chat, "a chat service");
  const unknown = envNames(chat).filter((n) => !(CONFIG_VARIABLES as readonly string[]).includes(n));
  assert.deepEqual(unknown, [], "docker-compose.yml sets variables the node does not read");
  for (const must of ["REDIS_URL", "MONGO_URL", "JWT_SECRET", "NODE_ENV"]) assert.ok(envNames(chat).includes(must), `chat sets ${must}`);
});

test("compose: chat is scalable, healthchecked, and every service waits on healthy dependencies", () => {
  const chat = compose.services.chat!;
  assert.equal(chat.container_name, undefined, "no container_name: --scale needs distinct names");
  assert.equal(chat.ports, undefined, "no host port on chat: replicas would collide");
  assert.ok(fs.existsSync(path.join(REPO_ROOT, chat.build!.dockerfile)), "the Dockerfile exists");
  for (const name of ["redis", "mongo", "chat", "nginx", "prometheus"]) assert.ok(compose.services[name]?.healthcheck, `${name} has a healthcheck`);
  assert.equal(chat.depends_on?.redis?.condition, "service_healthy");
  assert.equal(chat.depends_on?.mongo?.condition, "service_healthy");
  assert.equal(compose.services.nginx!.depends_on?.chat?.condition, "service_healthy");
  assert.ok(compose.services.prometheus!.command!.includes("--web.enable-remote-write-receiver"));
  assert.ok(compose.services.k6!.profiles!.includes("load"), "k6 only under the load profile");
  // grafana/k6 runs as uid 12345, and Docker creates a missing ./k6-results owned by root.
  assert.ok(compose.services.k6!.volumes!.some((v) => v.startsWith("./k6-results:")), "k6 writes its summaries to ./k6-results");
  assert.match(compose.services.k6!.user ?? "", /^\$\{K6_USER:-0:0\}$/, "k6 runs as root unless K6_USER says otherwise");
});

test("the image's HEALTHCHECK probes /healthz with node, on the timings of compose's check", () => {
  const dockerfile = fs.readFileSync(path.join(REPO_ROOT, "services/chat-node/Dockerfile"), "utf8");
  const m = /^HEALTHCHECK (.*?)\s*\\\n\s*CMD (\[.*\])$/m.exec(dockerfile);
  assert.ok(m, "a HEALTHCHECK with its CMD in exec form on the next line");
  const flags = Object.fromEntries([...m[1]!.matchAll(/--([a-z-]+)=(\S+)/g)].map((f) => [f[1]!, f[2]!]));
  const cmd = JSON.parse(m[2]!) as string[];
  assert.equal(cmd[0], "node", "node: there is no curl in node:24-slim");
  assert.match(cmd.at(-1)!, /127\.0\.0\.1:\$\{process\.env\.PORT \|\| 3001\}\/healthz/);
  const hc = compose.services.chat!.healthcheck as Record<string, string | number>;
  assert.deepEqual(flags, { interval: hc.interval, timeout: hc.timeout, "start-period": hc.start_period, retries: String(hc.retries) });
});

test("every way of starting a node gives it the project's V8 options", () => {
  const read = (f: string) => fs.readFileSync(path.join(REPO_ROOT, f), "utf8");
  const dockerfile = read("services/chat-node/Dockerfile");
  assert.match(dockerfile, new RegExp(`^ENV .*NODE_OPTIONS="${CHAT_NODE_OPTIONS}"`, "m"), "the image sets NODE_OPTIONS");
  // The start scripts put the project's options first, so that a NODE_OPTIONS the user exports wins.
  for (const manifest of ["package.json", "services/chat-node/package.json"]) {
    const start = (JSON.parse(read(manifest)) as { scripts: Record<string, string> }).scripts.start!;
    // `exec`: the script's process becomes the node, so that pnpm's SIGTERM reaches it (test/ops/signals.test.ts).
    assert.match(start, new RegExp(`NODE_OPTIONS="${CHAT_NODE_OPTIONS} \\$NODE_OPTIONS" exec \\S*node `), `${manifest} start: ${start}`);
  }
  assert.ok(read("scripts/start.sh").includes(`export NODE_OPTIONS="${CHAT_NODE_OPTIONS} \${NODE_OPTIONS:-}"`), "scripts/start.sh sets them too");
});

test("the image applies the same dependency patches as the workspace (pnpm patchedDependencies)", () => {
  const read = (f: string) => fs.readFileSync(path.join(REPO_ROOT, f), "utf8");
  const patches = [...read("pnpm-workspace.yaml").matchAll(/^\s+\S+:\s*(patches\/\S+\.patch)\s*$/gm)].map((m) => m[1]!);
  assert.ok(patches.length > 0, "pnpm-workspace.yaml lists the patches");
  for (const p of patches) assert.ok(fs.existsSync(path.join(REPO_ROOT, p)), `${p} exists`);
  const dockerfile = read("services/chat-node/Dockerfile");
  const copy = dockerfile.search(/^COPY patches patches\/$/m);
  const install = dockerfile.search(/^RUN pnpm install/m);
  assert.ok(copy >= 0 && install > copy, "the Dockerfile copies patches/ before pnpm install");
});

test("the image's Node is the workspace's pinned Node (Dockerfile NODE_VERSION = package.json's node)", () => {
  const pinned = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { devDependencies: Record<string, string> }).devDependencies.node;
  const arg = /^ARG NODE_VERSION=(\S+)$/m.exec(fs.readFileSync(path.join(REPO_ROOT, "services/chat-node/Dockerfile"), "utf8"))?.[1];
  assert.ok(pinned && arg, `both pin a version: package.json ${pinned}, Dockerfile ${arg}`);
  assert.equal(arg, pinned);
});

test("compose gives a replica longer to stop than its drain deadline (stop_grace_period > SHUTDOWN_TIMEOUT_MS)", () => {
  const chat = compose.services.chat as Service & { stop_grace_period?: string };
  const grace = /^(\d+)s$/.exec(chat.stop_grace_period ?? "")?.[1];
  assert.ok(grace, `stop_grace_period in seconds: ${chat.stop_grace_period}`);
  const env = chat.environment as Record<string, string>;
  const drain = /^\$\{SHUTDOWN_TIMEOUT_MS:-(\d+)\}$/.exec(env.SHUTDOWN_TIMEOUT_MS ?? "")?.[1];
  assert.ok(drain, `SHUTDOWN_TIMEOUT_MS has a default: ${env.SHUTDOWN_TIMEOUT_MS}`);
  // A second of margin at least: the drain's own deadline, then the process's exit.
  assert.ok(Number(grace) * 1000 >= Number(drain) + 1000, `stop_grace_period ${grace}s against a ${drain} ms drain`);
});

test("compose mounts only files the repository has", () => {
  const generated = new Set(["./services/web/dist", "./k6-results"]);
  for (const [name, s] of Object.entries(compose.services)) {
    for (const v of s.volumes ?? []) {
      const src = v.split(":")[0]!;
      if (!src.startsWith("./") || generated.has(src)) continue;
      assert.ok(fs.existsSync(path.join(REPO_ROOT, src)), `${name} mounts ${src}, which does not exist`);
    }
  }
});

test("docker-compose config accepts the file", { skip: spawnSync("docker-compose", ["version"]).status !== 0 && "docker-compose not installed" }, () => {
  const r = spawnSync("docker-compose", ["-f", "docker-compose.yml", "config", "-q"], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, JWT_SECRET: "compose-config-test-secret-0123" },
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
});

test("nginx -t accepts the local cluster's rendered config", { skip: !nginxBin() && "nginx not installed" }, () => {
  const dir = tempDir("chat-nginx-t-");
  const conf = renderNginx(dir, { listen: "127.0.0.1:1", nodePorts: [2, 3] });
  const r = spawnSync(nginxBin()!, ["-t", "-p", dir, "-c", conf, "-e", path.join(dir, "error.log")], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
});

test("compose-nginx.sh renders a config nginx -t accepts, one upstream per replica address", { skip: !nginxBin() && "nginx not installed" }, () => {
  const dir = tempDir("chat-nginx-compose-");
  // Two replicas: "localhost" resolves through getent to 127.0.0.1; the render is checked with nginx -t.
  // The config logs to /dev/stdout, as containers do: stdout is a file here (a socket cannot be opened).
  const stdout = fs.openSync(path.join(dir, "stdout.log"), "w");
  const r = spawnSync("sh", [path.join(REPO_ROOT, "infra/nginx/compose-nginx.sh"), "render"], {
    encoding: "utf8",
    stdio: ["ignore", stdout, "pipe"],
    env: {
      PATH: `${path.dirname(nginxBin()!)}:${process.env.PATH}`,
      NGINX_RUN_DIR: dir,
      CHAT_UPSTREAM_HOSTS: "127.0.0.2,127.0.0.3",
      NGINX_LISTEN: "127.0.0.1:1",
      NGINX_STATUS_LISTEN: "127.0.0.1:2",
      NGINX_MIME_TYPES: fs.existsSync("/etc/nginx/mime.types") ? "/etc/nginx/mime.types" : path.join(REPO_ROOT, "infra/nginx/sticky.conf"),
    },
  });
  fs.closeSync(stdout);
  assert.equal(r.status, 0, r.stderr);
  const upstreams = fs.readFileSync(path.join(dir, "upstreams.conf"), "utf8");
  assert.match(upstreams, /server 127\.0\.0\.2:3001 max_fails=0;/);
  assert.match(upstreams, /server 127\.0\.0\.3:3001 max_fails=0 backup;/, "each replica's upstream has the others as backups");
  assert.doesNotMatch(fs.readFileSync(path.join(dir, "nginx.conf"), "utf8"), /\bresolve\b;|hash .* consistent/, "no resolve server, no consistent hash over one name");
});

test("a replica count that is not a number stops compose with a message naming it", { skip: spawnSync("docker-compose", ["version"]).status !== 0 && "docker-compose not installed" }, () => {
  const r = spawnSync("docker-compose", ["-f", "docker-compose.yml", "config", "-q"], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    env: { PATH: process.env.PATH, HOME: process.env.HOME, JWT_SECRET: "compose-config-test-secret-0123", CHAT_REPLICAS: "three" },
  });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /deploy\.replicas.*"three" is not a valid integer/);
});

test("compose-nginx.sh stops with a message naming a bad setting", () => {
  const run = (env: Record<string, string>) =>
    spawnSync("sh", [path.join(REPO_ROOT, "infra/nginx/compose-nginx.sh"), "render"], { encoding: "utf8", env: { PATH: process.env.PATH, NGINX_RUN_DIR: tempDir("chat-nginx-bad-"), ...env } });
  const interval = run({ CHAT_DISCOVERY_INTERVAL: "soon" });
  assert.equal(interval.status, 78);
  assert.match(interval.stderr, /CHAT_DISCOVERY_INTERVAL must be whole seconds/);
  const cert = run({ NGINX_TLS_CERT: "/nonexistent/chat.crt", NGINX_TLS_KEY: "/nonexistent/chat.key" });
  assert.equal(cert.status, 78);
  assert.match(cert.stderr, /NGINX_TLS_CERT: no such file "\/nonexistent\/chat\.crt"/);
});

test("both nginx configs retry alike, and never replay a POST that was sent (no non_idempotent)", () => {
  const retry = (f: string) => fs.readFileSync(path.join(REPO_ROOT, "infra/nginx", f), "utf8").match(/^\s*proxy_next_upstream .*;$/gm)?.map((l) => l.trim());
  const local = retry("local.conf.template");
  assert.deepEqual(local, ["proxy_next_upstream error timeout http_502 http_503;"]);
  assert.deepEqual(retry("compose.conf"), local);
  assert.ok(!fs.readFileSync(path.join(REPO_ROOT, "infra/nginx/chat-common.conf"), "utf8").includes("proxy_next_upstream"), "no location overrides it");
});

after(() => stopAll());

/** A fake node: `ok` answers 201 with {}, `drop` closes the connection once a request arrived (a node dying mid-request). */
async function fakeNode(behaviour: "ok" | "drop") {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (behaviour === "drop") return void req.socket.destroy();
    req.resume();
    req.on("end", () => res.writeHead(201, { "content-type": "application/json" }).end("{}"));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/** nginx with the local cluster's rendered config in front of `nodePorts`: its URL, access log and stop(). */
async function localNginx(nodePorts: number[]) {
  const dir = tempDir("chat-nginx-run-");
  const port = await freePort();
  const conf = renderNginx(dir, { listen: `127.0.0.1:${port}`, nodePorts, webRoot: dir });
  const proc = startProcess(nginxBin()!, ["-p", dir, "-c", conf, "-e", path.join(dir, "error.log"), "-g", "daemon off;"]);
  const url = `http://127.0.0.1:${port}`;
  // /metrics is answered by nginx itself: waiting on it sends nothing to the nodes.
  await eventually(() => fetch(`${url}/metrics`).then(() => true, () => false), 10_000, `nginx to listen\n${proc.output()}`);
  return { url, accessLog: () => fs.readFileSync(path.join(dir, "access.log"), "utf8"), stop: () => proc.stop("SIGTERM", 5000) };
}

const post = (url: string) => fetch(`${url}/conversations`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"members":["a"]}' });

test("nginx answers /metrics itself with the node's 404, and retries a POST whose connect was refused", { skip: !nginxBin() && "nginx not installed" }, async () => {
  const ok = await fakeNode("ok");
  const refused = await freePort(); // nothing listens there: a killed node
  const lb = await localNginx([refused, ok.port]);
  try {
    for (const p of ["/metrics", "/metrics?name[]=chat_errors_total", "//metrics"]) {
      const res = await fetch(lb.url + p);
      assert.equal(res.status, 404, p);
      assert.match(res.headers.get("content-type") ?? "", /^application\/json/, p);
      assert.deepEqual(await res.json(), { error: { code: "NOT_FOUND", message: "no such route" } }, p);
    }
    // No cookie: each request is placed by its random $request_id, so one of them soon lands on the
    // refused port first (which max_fails then skips for 5 s); that one must still succeed.
    const statuses: number[] = [];
    for (let i = 0; i < 24 && !lb.accessLog().includes(`upstream=127.0.0.1:${refused}, `); i++) statuses.push((await post(lb.url)).status);
    assert.deepEqual(statuses.filter((s) => s !== 201), [], "every POST answered by the live node");
    assert.match(lb.accessLog(), new RegExp(`"POST /conversations HTTP/1.1" 201 .*upstream=127\\.0\\.0\\.1:${refused}, 127\\.0\\.0\\.1:${ok.port} `));
    assert.deepEqual(ok.seen.filter((r) => r.includes("metrics")), [], "no /metrics request reached a node");
  } finally {
    await lb.stop();
    await ok.close();
  }
});

test("nginx does not replay a POST a node received and died on, but does replay a GET", { skip: !nginxBin() && "nginx not installed" }, async () => {
  const a = await fakeNode("drop");
  const b = await fakeNode("drop");
  const total = () => a.seen.length + b.seen.length;
  // A fresh nginx per request: max_fails=1 takes a failed node out for 5 s.
  let lb = await localNginx([a.port, b.port]);
  try {
    assert.equal((await post(lb.url)).status, 502);
    assert.equal(total(), 1, `the POST reached one node only: ${[...a.seen, ...b.seen].join(", ")}`);
  } finally {
    await lb.stop();
  }
  lb = await localNginx([a.port, b.port]);
  try {
    assert.equal((await fetch(`${lb.url}/conversations/c1/messages`)).status, 502);
    assert.equal(total(), 3, "the GET was passed on to the other node");
  } finally {
    await lb.stop();
    await a.close();
    await b.close();
  }
});

test("compose's nginx gives new clients only to ready replicas; a session's requests still reach its own", { skip: !nginxBin() && "nginx not installed" }, async () => {
  // Two fake replicas on one port of two loopback addresses, as compose's replicas share a port.
  const port = await freePort();
  const ready: Record<string, boolean> = { "127.0.0.2": true, "127.0.0.3": true };
  const replicas = await Promise.all(
    Object.keys(ready).map(
      (addr) =>
        new Promise<http.Server>((resolve, reject) => {
          const s = http.createServer((req, res) => {
            if (req.url === "/readyz") return res.writeHead(ready[addr] ? 200 : 503).end();
            res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ replica: addr }));
          });
          s.once("error", reject).listen(port, addr, () => resolve(s));
        }),
    ),
  );
  const dir = tempDir("chat-nginx-ready-");
  const listen = await freePort();
  // nginx logs to /dev/stdout as in a container; a pipe from Node is a socket, which cannot be
  // opened that way, so stdout is a file here and stderr (the script's log) is read as it comes.
  const stdout = fs.openSync(path.join(dir, "stdout.log"), "w");
  let log = "";
  const child = spawn("sh", [path.join(REPO_ROOT, "infra/nginx/compose-nginx.sh")], {
    stdio: ["ignore", stdout, "pipe"],
    env: {
      PATH: `${path.dirname(nginxBin()!)}:${process.env.PATH}`,
      NGINX_RUN_DIR: dir,
      CHAT_UPSTREAM_HOSTS: "127.0.0.2,127.0.0.3",
      CHAT_UPSTREAM_PORT: String(port),
      NGINX_LISTEN: `127.0.0.1:${listen}`,
      NGINX_STATUS_LISTEN: `127.0.0.1:${await freePort()}`,
      NGINX_WORKERS: "1",
      NGINX_MIME_TYPES: fs.existsSync("/etc/nginx/mime.types") ? "/etc/nginx/mime.types" : path.join(REPO_ROOT, "infra/nginx/sticky.conf"),
    },
  });
  fs.closeSync(stdout);
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const proc = { output: () => log };
  const hit = async (cookie?: string, sid?: string) => {
    const res = await fetch(`http://127.0.0.1:${listen}/socket.io/?EIO=4&transport=polling${sid ? `&sid=${sid}` : ""}`, { headers: cookie ? { cookie } : {} });
    assert.equal(res.status, 200);
    const sticky = /chat_sticky=([0-9a-f]+)/.exec(res.headers.get("set-cookie") ?? "")?.[1];
    return { replica: ((await res.json()) as { replica: string }).replica, sticky };
  };
  const placements = async (n: number) => {
    const seen: string[] = [];
    for (let i = 0; i < n; i++) seen.push((await hit()).replica);
    return seen;
  };
  try {
    await eventually(() => hit().then(() => true, () => false), 15_000, `compose's nginx to serve\n${proc.output()}`);
    // Both ready: new clients land on both; keep the cookie of 127.0.0.3.
    let cookie3: string | undefined;
    await eventually(async () => {
      const h = await hit();
      if (h.replica === "127.0.0.3") cookie3 = h.sticky;
      return cookie3;
    }, 10_000, "a handshake placed on 127.0.0.3");

    ready["127.0.0.3"] = false; // full, draining, or its Redis away
    await eventually(async () => (await placements(8)).every((r) => r === "127.0.0.2"), 15_000, `new clients kept off the replica that is not ready\n${proc.output()}`);
    assert.equal((await hit(`chat_sticky=${cookie3}`)).replica, "127.0.0.2", "a new handshake whose cookie names it goes elsewhere");
    assert.equal((await hit(`chat_sticky=${cookie3}`, "open-session")).replica, "127.0.0.3", "a session's requests still reach it");
    assert.match(proc.output(), /not ready: 127\.0\.0\.3/);

    ready["127.0.0.2"] = false; // none ready: nginx sends to every replica rather than none
    await eventually(async () => new Set(await placements(12)).size === 2, 15_000, "placement over every replica when none is ready");

    ready["127.0.0.2"] = ready["127.0.0.3"] = true;
    await eventually(async () => (await hit(`chat_sticky=${cookie3}`)).replica === "127.0.0.3", 15_000, "the cookie followed again once it is ready");
  } finally {
    child.kill("SIGTERM");
    const kill = setTimeout(() => child.kill("SIGKILL"), 5000);
    const code = await exited;
    clearTimeout(kill);
    for (const s of replicas) {
      s.closeAllConnections();
      s.close();
    }
    assert.equal(code, 0, proc.output());
  }
});
