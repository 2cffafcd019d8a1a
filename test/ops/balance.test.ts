/**
 * The launcher's placement weights (infra/cluster/balance.ts) and the local nginx config that uses
 * them: weights follow each node's shortfall below the even share, and the local config's own
 * Engine.IO location proxies exactly as chat-common.conf's, which compose uses.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { REPO_ROOT, tempDir } from "@chat/test-kit";
import { MAX_WEIGHT, fillWeights, spreadRatio } from "../../infra/cluster/balance.ts";
import { renderNginx } from "../../infra/cluster/nginx.ts";

test("a drained node's clients are weighted towards the emptiest nodes, in proportion to their shortfall", () => {
  // A rolling restart's first step: node-1 (90) drains, the surge node is empty.
  assert.deepEqual(fillWeights({ "node-1": 90, "node-2": 90, "node-3": 90, "node-4": 0 }, ["node-2", "node-3", "node-4"], 90), { "node-2": 1, "node-3": 1, "node-4": MAX_WEIGHT });
  // Short by 30 and 10 of an even 50: weights 3 to 1.
  assert.deepEqual(fillWeights({ a: 20, b: 40, c: 60 }, ["a", "b", "c"], 30), { a: 100, b: 33, c: 1 });
  // Already even, or nothing arriving onto even nodes: every weight 1.
  assert.deepEqual(fillWeights({ a: 50, b: 50 }, ["a", "b"], 0), { a: 1, b: 1 });
  assert.deepEqual(fillWeights({ a: 50, b: 50 }, ["a", "b"], 40), { a: MAX_WEIGHT, b: MAX_WEIGHT });
  assert.deepEqual(fillWeights({}, [], 10), {});
  // A node unknown to the counts counts as empty.
  assert.deepEqual(fillWeights({ a: 10 }, ["a", "b"], 10), { a: 1, b: MAX_WEIGHT });
});

test("the spread ratio is the busiest node over the least busy one", () => {
  assert.equal(spreadRatio([60, 70, 84]), 1.4);
  assert.equal(spreadRatio([0, 0]), 1);
  assert.equal(spreadRatio([5, 0]), Number.POSITIVE_INFINITY);
  assert.equal(spreadRatio([]), 1);
});

/** The directives of the first `location <spec> {` block of a config, without its proxy_pass, add_header and comments. */
function proxySettings(conf: string, spec: string): string[] {
  const at = conf.indexOf(`location ${spec} {`);
  assert.ok(at >= 0, `no location ${spec}`);
  const body = conf.slice(at, conf.indexOf("}", at));
  return body.split("\n").slice(1).map((l) => l.trim()).filter((l) => l && !l.startsWith("#") && !/^(proxy_pass|add_header) /.test(l));
}

test("the local config's Engine.IO location proxies as chat-common.conf's /socket.io/ does", () => {
  const dir = tempDir("chat-nginx-render-");
  const local = fs.readFileSync(renderNginx(dir, { listen: "127.0.0.1:1", servers: [{ port: 2 }, { port: 3, weight: 40, down: true }] }), "utf8");
  const common = fs.readFileSync(path.join(REPO_ROOT, "infra/nginx/chat-common.conf"), "utf8");
  assert.deepEqual(proxySettings(local, "= /socket.io/"), proxySettings(common, "/socket.io/"));
  // The sticky ring takes no weight; the placement upstream does, and both skip the node marked down.
  assert.match(local, /upstream chat \{\n\s+hash \$chat_sticky_key consistent;\n\s+server 127\.0\.0\.1:2 max_fails=0;\n\s+server 127\.0\.0\.1:3 max_fails=0 down;/);
  assert.match(local, /upstream chat_place \{\n\s+server 127\.0\.0\.1:2 max_fails=0;\n\s+server 127\.0\.0\.1:3 max_fails=0 weight=40 down;/);
  assert.doesNotMatch(local, /max_fails=[1-9]/);
});
