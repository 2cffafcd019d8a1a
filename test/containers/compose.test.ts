/**
 * docker-compose.yml run for real: podman's Docker-compatible API (started here, stopped by PID)
 * driven by Debian's docker-compose v1, the chat image built from services/chat-node/Dockerfile
 * unmodified, every other image a local stand-in from infra/images/build.sh (no image registry is
 * reachable here; docs/cluster.md lists them), and docker-compose.sqlite.yml sharing SQLite on a
 * volume in place of MongoDB (no image or package for it here). Checked from the host through
 * nginx, as an ops team would: the page, chat across replicas, scale out (Prometheus and nginx pick
 * the replica up), a stopped replica drains, a killed one fails over, long-polling clients stay on
 * one replica through their upgrade, no 5xx meanwhile, and `down` leaves nothing.
 *
 * podman 4.3 runs healthchecks from systemd timers, and there is no systemd here: the test runs
 * `podman healthcheck run` on the project's containers itself, every 2 s.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import path from "node:path";
import { io, type Socket } from "socket.io-client";
import { REPO_ROOT, TEST_SECRET, connectUser, emitAck, eventually, freePort, mintToken, sleep, startProcess, tempDir, waitForEvent, type Proc } from "@chat/test-kit";

const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const skipReason =
  process.getuid?.() !== 0
    ? "needs root: podman here runs rootful (no user namespaces configured)"
    : !has("podman")
      ? "podman not installed (scripts/ensure.sh system podman)"
      : !has("docker-compose")
        ? "docker-compose not installed (scripts/ensure.sh system docker-compose)"
        : !has("debootstrap") && !fs.existsSync("/usr/sbin/debootstrap")
          ? "debootstrap not installed (scripts/ensure.sh system podman)"
          : false;
if (skipReason) console.log(`# compose test skipped: ${skipReason}`);

const project = `chattest${process.pid}`;
const dir = skipReason ? "" : tempDir("chat-compose-");
const sock = path.join(dir, "podman.sock");
let service: Proc | undefined;
let healthLoop: NodeJS.Timeout | undefined;
let env: NodeJS.ProcessEnv = {};
let base = "";
let promUrl = "";
let tlsBase = "";
let ca = "";
const timings: Record<string, number> = {};

const podmanEnv = () => ({ ...process.env, CONTAINERS_CONF: path.join(REPO_ROOT, "infra/images/containers.conf") });

/** Runs a command to its end (bounded): its output; throws on a non-zero exit. */
function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; allowFail?: boolean } = {}): Promise<{ code: number | null; out: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: REPO_ROOT, env: opts.env ?? env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let stdout = "";
    p.stdout.on("data", (d: Buffer) => {
      out += d;
      stdout += d;
    });
    p.stderr.on("data", (d: Buffer) => (out += d));
    const timer = setTimeout(() => p.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
    p.on("close", (code) => {
      clearTimeout(timer);
      if (code !== 0 && !opts.allowFail) reject(new Error(`${cmd} ${args.join(" ")} exited ${code}:\n${out.slice(-6000)}`));
      else resolve({ code, out, stdout });
    });
  });
}

const files = ["-f", "docker-compose.yml", "-f", "docker-compose.sqlite.yml", "-p", project];
const compose = (args: string[], timeoutMs = 300_000) => run("docker-compose", [...files, ...args], { timeoutMs });
const podman = (args: string[], allowFail = false) => run("podman", args, { env: podmanEnv(), allowFail, timeoutMs: 60_000 });

async function projectContainers(service?: string): Promise<Array<{ id: string; name: string; ip: string; running: boolean }>> {
  const filter = ["--filter", `label=com.docker.compose.project=${project}`];
  if (service) filter.push("--filter", `label=com.docker.compose.service=${service}`);
  const ids = (await podman(["ps", "-a", "-q", ...filter])).stdout.split(/\s+/).filter(Boolean);
  if (ids.length === 0) return [];
  const info = JSON.parse((await podman(["inspect", ...ids])).stdout) as Array<{
    Id: string;
    Name: string;
    State: { Running: boolean };
    NetworkSettings: { Networks: Record<string, { IPAddress: string }> };
  }>;
  return info.map((c) => ({ id: c.Id, name: c.Name, running: c.State.Running, ip: Object.values(c.NetworkSettings.Networks)[0]?.IPAddress ?? "" }));
}

/** The replica tokens nginx's generated config knows: token -> replica address. */
async function nginxTokens(): Promise<Map<string, string>> {
  const [nginx] = await projectContainers("nginx");
  const conf = (await podman(["exec", nginx!.id, "cat", "/tmp/chat-nginx/upstreams.conf"])).stdout;
  const m = new Map<string, string>();
  for (const [, addr, token] of conf.matchAll(/"~\(\^\|, \)([0-9\\.]+):3001\$" ([0-9a-f]+);/g)) m.set(token!, addr!.replaceAll("\\", ""));
  return m;
}

/** An Engine.IO handshake without a cookie through nginx: the replica token nginx pinned it to. */
async function placement(): Promise<string> {
  const res = await fetch(`${base}/socket.io/?EIO=4&transport=polling`);
  await res.text();
  assert.equal(res.status, 200);
  const m = /chat_sticky=([0-9a-f]+)/.exec(res.headers.get("set-cookie") ?? "");
  assert.ok(m, `nginx set the chat_sticky cookie: ${res.headers.get("set-cookie")}`);
  return m[1]!;
}

/**
 * Handshakes until one lands on a replica whose token passes `want`, bounded in count (240) and
 * time (60 s). Spaced 250 ms apart: a replica can be in nginx's generated config before its node
 * is ready or before nginx's reload has finished, and back-to-back tries would all miss it then.
 */
async function placementWhere(want: (token: string) => boolean, what: string): Promise<string> {
  const deadline = Date.now() + 60_000;
  const seen = new Map<string, number>();
  for (let i = 0; i < 240 && Date.now() < deadline; i++) {
    const t = await placement();
    if (want(t)) return t;
    seen.set(t, (seen.get(t) ?? 0) + 1);
    await sleep(250);
  }
  throw new Error(`no handshake landed on ${what} within 60 s; placements seen: ${JSON.stringify(Object.fromEntries(seen))}`);
}

/** Requests through nginx all along, recording every status (a failed fetch is 0). */
function probe(token: string) {
  const statuses: number[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const status = await fetch(`${base}/conversations`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(15_000) }).then(
        async (r) => (await r.arrayBuffer(), r.status),
        () => 0,
      );
      statuses.push(status);
      await sleep(100);
    }
  })();
  return {
    statuses,
    async stop() {
      stopped = true;
      await loop;
      return statuses;
    },
  };
}

before(async () => {
  if (skipReason) return;
  const t0 = Date.now();
  service = startProcess("podman", ["system", "service", "--time=0", `unix://${sock}`], { env: podmanEnv() });
  await eventually(() => fs.existsSync(sock), 30_000, `podman's API socket\n${service.output()}`);
  const built = await run("bash", ["infra/images/build.sh"], { env: podmanEnv(), timeoutMs: 900_000 });
  timings.localImagesS = (Date.now() - t0) / 1000;
  const vars = Object.fromEntries(
    built.stdout
      .split("\n")
      .filter((l) => /^[A-Z_]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
  // A certificate made here, for nginx's TLS server (NGINX_TLS_CERT/KEY, paths inside its container).
  const tlsDir = path.join(dir, "tls");
  fs.mkdirSync(tlsDir);
  await run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", path.join(tlsDir, "tls.key"), "-out", path.join(tlsDir, "tls.crt")], { env: process.env });
  fs.chmodSync(path.join(tlsDir, "tls.key"), 0o644);
  ca = fs.readFileSync(path.join(tlsDir, "tls.crt"), "utf8");
  const httpPort = await freePort();
  const httpsPort = await freePort();
  tlsBase = `https://127.0.0.1:${httpsPort}`;
  const promPort = await freePort();
  base = `http://127.0.0.1:${httpPort}`;
  promUrl = `http://127.0.0.1:${promPort}`;
  env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DOCKER_HOST: `unix://${sock}`,
    COMPOSE_HTTP_TIMEOUT: "300",
    ...vars,
    CHAT_IMAGE: "localhost/chat-test/chat-node:local",
    JWT_SECRET: TEST_SECRET,
    CORS_ORIGINS: base,
    HTTP_PORT: `127.0.0.1:${httpPort}`,
    HTTPS_PORT: `127.0.0.1:${httpsPort}`,
    TLS_DIR: tlsDir,
    NGINX_TLS_CERT: "/etc/nginx/tls/tls.crt",
    NGINX_TLS_KEY: "/etc/nginx/tls/tls.key",
    PROMETHEUS_PORT: `127.0.0.1:${promPort}`,
    ALERTMANAGER_PORT: `127.0.0.1:${await freePort()}`,
    CHAT_REPLICAS: "3",
    SHUTDOWN_TIMEOUT_MS: "8000",
    RATE_LIMIT_DISABLED: "1",
  };
  const t1 = Date.now();
  await compose(["build", "chat"], 900_000);
  timings.chatImageS = (Date.now() - t1) / 1000;
  // compose waits on healthy dependencies; podman runs no healthcheck timers here, so do it.
  healthLoop = setInterval(() => {
    void projectContainers().then(
      (cs) => Promise.all(cs.filter((c) => c.running).map((c) => podman(["healthcheck", "run", c.id], true))),
      () => undefined,
    );
  }, 2000);
  const t2 = Date.now();
  await compose(["up", "-d", "redis", "mongo", "chat", "nginx", "prometheus", "alertmanager"], 600_000);
  await eventually(async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200, 120_000, "the cluster to answer /readyz through nginx");
  timings.upToReadyS = (Date.now() - t2) / 1000;
  timings.nothingToHealthyS = (Date.now() - t0) / 1000;
  console.log(`# compose timings (s): ${JSON.stringify(timings)}`);
});

after(async () => {
  if (skipReason) return;
  if (healthLoop) clearInterval(healthLoop);
  if (env.DOCKER_HOST) {
    const down = await compose(["down", "-v", "-t", "5"], 300_000).catch((e: Error) => ({ out: e.message }));
    const left = await projectContainers().catch(() => []);
    if (left.length) console.log(`# compose down left: ${left.map((c) => c.name).join(", ")}\n${down.out.slice(-2000)}`);
  }
  await service?.stop("SIGTERM", 10_000);
});

test("compose: 3 replicas behind nginx serve the page and chat across replicas, gap-free", { skip: skipReason, timeout: 900_000 }, async () => {
  const chats = await projectContainers("chat");
  assert.equal(chats.filter((c) => c.running).length, 3, "deploy.replicas: CHAT_REPLICAS=3");

  const page = await fetch(`${base}/`);
  assert.equal(page.status, 200, "the chat page is in the image");
  assert.match(await page.text(), /<html/i);
  assert.match(page.headers.get("x-request-id") ?? "", /^[0-9a-f]{32}$/, "nginx returns its request id");

  const tokens = (await eventually(async () => ((await nginxTokens()).size === 3 ? nginxTokens() : undefined), 30_000, "nginx to know 3 replicas"))!;
  const t1 = await placement();
  const t2 = await placementWhere((t) => t !== t1, "a second replica");
  assert.ok(tokens.has(t1) && tokens.has(t2));

  const alice = await connectUser(base, "alice", { extraHeaders: { cookie: `chat_sticky=${t1}` } });
  const bob = await connectUser(base, "bob", { extraHeaders: { cookie: `chat_sticky=${t2}` } });
  const res = await fetch(`${base}/conversations`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${await mintToken("alice")}` },
    body: JSON.stringify({ members: ["alice", "bob"] }),
  });
  assert.equal(res.status, 201);
  const conv = (await res.json()) as { id: string };
  for (const s of [alice, bob]) assert.equal((await emitAck<{ ok: boolean }>(s, "joinConversation", { conversationId: conv.id }, 15_000)).ok, true);
  const seen: Record<string, number[]> = { alice: [], bob: [] };
  alice.on("newMessage", (m: { seq: number }) => seen.alice!.push(m.seq));
  bob.on("newMessage", (m: { seq: number }) => seen.bob!.push(m.seq));
  for (let i = 1; i <= 5; i++) {
    const ack = await emitAck<{ ok: boolean; message: { seq: number } }>(i % 2 ? alice : bob, "sendMessage", { conversationId: conv.id, message: `m${i}`, clientMessageId: `c${i}` }, 15_000);
    assert.equal(ack.ok, true);
  }
  await eventually(() => seen.alice!.length >= 5 && seen.bob!.length >= 5, 30_000, "every message on both replicas");
  assert.deepEqual(seen.alice, [1, 2, 3, 4, 5]);
  assert.deepEqual(seen.bob, [1, 2, 3, 4, 5]);
  alice.disconnect();
  bob.disconnect();
});

test("compose: a default socket.io-client (polling, then upgrade) stays on one replica", { skip: skipReason, timeout: 300_000 }, async () => {
  for (let i = 0; i < 3; i++) {
    // withCredentials: engine.io-client keeps the cookies nginx sets, as a browser does.
    const s: Socket = io(base, { auth: { token: await mintToken(`poller${i}`) }, withCredentials: true, reconnection: false, forceNew: true });
    try {
      await new Promise<void>((resolve, reject) => {
        s.once("connect", () => resolve());
        s.once("connect_error", reject);
        setTimeout(() => reject(new Error("connect timeout")), 20_000);
      });
      await eventually(() => s.io.engine.transport.name === "websocket", 30_000, "the upgrade to WebSocket");
      const ack = await emitAck<{ ok: boolean }>(s, "typing", { conversationId: "none" }, 15_000).catch((e: Error) => ({ ok: false, e }));
      assert.ok(s.connected, `still connected after the upgrade (${JSON.stringify(ack)})`);
    } finally {
      s.disconnect();
    }
  }
});

test("compose: --scale chat=4 adds a replica that Prometheus scrapes and nginx places new clients on", { skip: skipReason, timeout: 600_000 }, async () => {
  const before = new Set((await nginxTokens()).keys());
  await compose(["up", "-d", "--no-recreate", "--scale", "chat=4", "chat"], 600_000);
  const tokens = (await eventually(async () => ((await nginxTokens()).size === 4 ? nginxTokens() : undefined), 90_000, "nginx to know the 4th replica"))!;
  const added = [...tokens.keys()].filter((t) => !before.has(t));
  assert.equal(added.length, 1);
  await placementWhere((t) => t === added[0], "the new replica");
  await eventually(
    async () => {
      const r = (await (await fetch(`${promUrl}/api/v1/targets?state=active`)).json()) as { data: { activeTargets: Array<{ labels: { job: string }; health: string }> } };
      return r.data.activeTargets.filter((t) => t.labels.job === "chat" && t.health === "up").length === 4;
    },
    120_000,
    "Prometheus to scrape 4 chat replicas",
  );
});

test("compose: a stopped replica drains (exit 0, its client moves, nothing acked lost), a killed one fails over, no 5xx meanwhile", { skip: skipReason, timeout: 600_000 }, async () => {
  const tokens = await nginxTokens();
  const byAddr = new Map([...tokens].map(([t, a]) => [a, t]));
  const chats = (await projectContainers("chat")).filter((c) => c.running);
  assert.ok(chats.length >= 3);
  const [victim, killed] = chats;
  const tv = byAddr.get(victim!.ip)!;
  const tk = byAddr.get(killed!.ip)!;
  const carol = await connectUser(base, "carol", { extraHeaders: { cookie: `chat_sticky=${tv}` }, reconnection: true, reconnectionDelay: 200 });
  const dave = await connectUser(base, "dave", { extraHeaders: { cookie: `chat_sticky=${tk}` }, reconnection: true, reconnectionDelay: 200 });
  const carolToken = await mintToken("carol");
  const res = await fetch(`${base}/conversations`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${carolToken}` },
    body: JSON.stringify({ members: ["carol", "dave"] }),
  });
  const conv = (await res.json()) as { id: string };
  const acked: number[] = [];
  for (let i = 1; i <= 3; i++) acked.push((await emitAck<{ message: { seq: number } }>(carol, "sendMessage", { conversationId: conv.id, message: `before${i}` }, 15_000)).message.seq);

  const requests = probe(carolToken);
  const stop = await podman(["stop", "-t", "15", victim!.id]);
  assert.equal(stop.code, 0);
  const state = JSON.parse((await podman(["inspect", victim!.id])).stdout) as Array<{ State: { ExitCode: number } }>;
  assert.equal(state[0]!.State.ExitCode, 0, "the stopped replica drained and exited 0");
  await eventually(() => carol.connected, 60_000, "carol to reconnect to another replica");
  await emitAck(carol, "joinConversation", { conversationId: conv.id }, 15_000);
  acked.push((await emitAck<{ message: { seq: number } }>(carol, "sendMessage", { conversationId: conv.id, message: "after-stop" }, 15_000)).message.seq);

  await podman(["kill", killed!.id]);
  await eventually(async () => {
    if (!dave.connected) return false;
    const r = await emitAck<{ ok: boolean }>(dave, "joinConversation", { conversationId: conv.id }, 10_000).catch(() => ({ ok: false }));
    return r.ok;
  }, 60_000, "dave to fail over to a live replica");
  const got = waitForEvent<{ message: string }>(dave, "newMessage", { timeoutMs: 30_000, filter: (m) => m.message === "after-kill" });
  acked.push((await emitAck<{ message: { seq: number } }>(carol, "sendMessage", { conversationId: conv.id, message: "after-kill" }, 15_000)).message.seq);
  await got;
  await sleep(1000);
  const statuses = await requests.stop();

  const history = (await (await fetch(`${base}/conversations/${conv.id}/messages?limit=50`, { headers: { authorization: `Bearer ${carolToken}` } })).json()) as { messages: Array<{ seq: number }> };
  assert.deepEqual(history.messages.map((m) => m.seq), acked, "every acked message kept, seq gap-free");
  assert.ok(statuses.length > 10, "the probe ran throughout");
  assert.deepEqual(statuses.filter((s) => s >= 500 || s === 0), [], `no 5xx (or failed request) through nginx while replicas stopped and died; ${statuses.length} requests`);
  carol.disconnect();
  dave.disconnect();
});

/** A GET over TLS trusting only the test's certificate: status and body. */
function httpsGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

test("compose: nginx's TLS server serves https:// and wss:// with the configured certificate", { skip: skipReason, timeout: 120_000 }, async () => {
  const page = await httpsGet(`${tlsBase}/`);
  assert.equal(page.status, 200);
  assert.match(page.body, /<html/i);
  const s = await connectUser(tlsBase, "erin", { ca });
  assert.equal(s.io.engine.transport.name, "websocket");
  s.disconnect();
});

test("compose: Alertmanager's configuration passes amtool check-config, and Prometheus sends its alerts there", { skip: skipReason, timeout: 300_000 }, async () => {
  const [am] = await projectContainers("alertmanager");
  assert.ok(am?.running, "Alertmanager runs");
  const check = await podman(["exec", am.id, "amtool", "check-config", "/etc/alertmanager/alertmanager.yml"]);
  assert.match(check.stdout, /SUCCESS/, check.stdout);
  await eventually(
    async () => {
      const r = (await (await fetch(`${promUrl}/api/v1/alertmanagers`)).json()) as { data: { activeAlertmanagers: { url: string }[] } };
      return r.data.activeAlertmanagers.some((a) => /:9093\/api\/v2\/alerts$/.test(a.url));
    },
    60_000,
    "Prometheus to know compose's Alertmanager",
  );
});

test("compose: down leaves nothing of the project", { skip: skipReason, timeout: 300_000 }, async () => {
  await compose(["down", "-v", "-t", "5"], 300_000);
  assert.deepEqual((await projectContainers()).map((c) => c.name), []);
  const vols = (await podman(["volume", "ls", "-q", "--filter", `label=com.docker.compose.project=${project}`])).stdout.trim();
  assert.equal(vols, "");
});
