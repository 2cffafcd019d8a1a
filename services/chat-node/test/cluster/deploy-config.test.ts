/**
 * The deployment files stay correct by construction (no Docker engine here): docker-compose.yml
 * sets only variables the node reads, mounts files that exist, and passes `docker-compose config`;
 * both nginx configs pass `nginx -t` (the compose one with its 1.27.3+ `resolve` servers swapped
 * for static ones, which Debian's 1.22 lacks).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { parse } from "yaml";
import { CHAT_NODE_OPTIONS, REPO_ROOT, tempDir } from "@chat/test-kit";
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

test("nginx -t accepts the compose config (resolve servers made static)", { skip: !nginxBin() && "nginx not installed" }, () => {
  const dir = tempDir("chat-nginx-compose-");
  fs.mkdirSync(path.join(dir, "chat"));
  for (const f of ["sticky.conf", "chat-common.conf"]) fs.copyFileSync(path.join(REPO_ROOT, "infra/nginx", f), path.join(dir, "chat", f));
  const conf = fs
    .readFileSync(path.join(REPO_ROOT, "infra/nginx/compose.conf"), "utf8")
    .replace(/server chat:3001 resolve/, "server 127.0.0.1:3001")
    .replace(/^\s*resolver(_timeout)? .*$/gm, "")
    .replaceAll("/etc/nginx/chat/", `${dir}/chat/`)
    .replace("/etc/nginx/mime.types", fs.existsSync("/etc/nginx/mime.types") ? "/etc/nginx/mime.types" : `${dir}/chat/sticky.conf`)
    .replace("pid /tmp/nginx.pid", `pid ${dir}/nginx.pid`)
    .replace("error_log /dev/stderr", `error_log ${dir}/error.log`)
    .replace("access_log /dev/stdout", `access_log ${dir}/access.log`)
    .replace("listen 8080;", "listen 127.0.0.1:1;")
    .replace("listen 8081;", "listen 127.0.0.1:2;");
  assert.match(conf, /server 127\.0\.0\.1:3001/, "the upstream server line was found");
  fs.writeFileSync(path.join(dir, "nginx.conf"), conf);
  const r = spawnSync(nginxBin()!, ["-t", "-p", dir, "-c", path.join(dir, "nginx.conf"), "-e", path.join(dir, "error.log")], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
});
