/** @chat/test-kit's own helpers, each against a real server: what every suite's assertions stand on. */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import http from "node:http";
import https from "node:https";
import fs from "node:fs";
import type { AddressInfo } from "node:net";
import { api, eventually, hasOpenssl, makeCertificates, mintToken, TEST_SECRET } from "../src/index.ts";

describe("test-kit", () => {
  const servers: http.Server[] = [];
  after(() => servers.forEach((s) => s.close()));

  it("api() sends JSON with the bearer token and parses JSON answers, keeping other bodies as text", async () => {
    const seen: { auth?: string; type?: string; body: string }[] = [];
    const server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        seen.push({ auth: req.headers.authorization, type: req.headers["content-type"], body });
        if (req.url === "/text") res.end("plain");
        else res.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify({ echo: body }));
      });
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const r = await api(url, "tok").post<{ echo: string }>("/x", { a: 1 });
    assert.deepEqual([r.status, r.body], [201, { echo: '{"a":1}' }]);
    assert.deepEqual(seen[0], { auth: "Bearer tok", type: "application/json", body: '{"a":1}' });
    assert.equal((await api(url).get<string>("/text")).body, "plain");
    assert.equal(seen[1]!.auth, undefined, "no token, no header");
  });

  it("eventually() returns the first truthy value, and names what it waited for when it times out", async () => {
    let n = 0;
    assert.equal(await eventually(() => (++n >= 3 ? n : 0), 2000), 3);
    await assert.rejects(eventually(() => { throw new Error("still no"); }, 200, "the thing"), /timed out waiting for the thing: Error: still no/);
  });

  it("mintToken() signs HS256 with the test secret, subject and expiry", async () => {
    const token = await mintToken("alice", { expiresInSec: 60 });
    const [h, p, s] = token.split(".");
    const expected = crypto.createHmac("sha256", TEST_SECRET).update(`${h}.${p}`).digest("base64url");
    assert.equal(s, expected, "signed with TEST_SECRET");
    const claims = JSON.parse(Buffer.from(p!, "base64url").toString()) as { sub: string; exp: number };
    assert.equal(claims.sub, "alice");
    assert.ok(claims.exp > Date.now() / 1000 && claims.exp <= Date.now() / 1000 + 61);
  });

  it("makeCertificates() gives a CA-signed server certificate that a TLS client verifies for localhost", { skip: hasOpenssl() ? false : "openssl is not installed here" }, async () => {
    const c = makeCertificates();
    const server = https.createServer({ cert: fs.readFileSync(c.certFile), key: fs.readFileSync(c.keyFile) }, (_req, res) => res.end("tls ok"));
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    const get = (ca?: string) =>
      new Promise<string>((resolve, reject) => {
        https.get({ host: "localhost", port, ca, path: "/" }, (res) => {
          let b = "";
          res.on("data", (d) => (b += d)).on("end", () => resolve(b));
        }).on("error", reject);
      });
    assert.equal(await get(c.ca), "tls ok");
    await assert.rejects(get(undefined), /self[- ]signed|unable to verify|certificate/i, "not trusted without the CA");
  });
});
