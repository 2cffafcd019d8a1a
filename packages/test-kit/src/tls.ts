/**
 * Certificates made with openssl at run time, for the TLS tests (nginx's listener, rediss://): a
 * CA, and a server certificate it signs for `localhost` and 127.0.0.1. Nothing is committed.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { tempDir } from "@chat/process-kit";

export interface TestCertificates {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  /** A client certificate the same CA signs (for servers that verify their clients, mutual TLS). */
  clientCertFile: string;
  clientKeyFile: string;
  ca: string;
}

/** True when openssl runs here; the TLS tests skip with a reason otherwise. */
export function hasOpenssl(): boolean {
  return spawnSync("openssl", ["version"]).status === 0;
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync("openssl", args, { cwd, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.stderr}`);
}

/**
 * A fresh CA and a server certificate, valid one day, for `names` and, unless `loopback: false`,
 * `localhost` and IP 127.0.0.1.
 */
export function makeCertificates(names: string[] = [], opts: { loopback?: boolean } = {}): TestCertificates {
  const dir = tempDir("chat-tls-");
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=chat test CA"], dir);
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", `/CN=${names[0] ?? "localhost"}`], dir);
  const san = [...(opts.loopback === false ? [] : ["DNS:localhost", "IP:127.0.0.1"]), ...names.map((n) => `DNS:${n}`)].join(",");
  fs.writeFileSync(path.join(dir, "ext.cnf"), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`);
  openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "ext.cnf"], dir);
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=chat node"], dir);
  fs.writeFileSync(path.join(dir, "client.cnf"), "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n");
  openssl(["x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "client.crt", "-days", "1", "-extfile", "client.cnf"], dir);
  const caFile = path.join(dir, "ca.crt");
  return {
    dir, caFile, certFile: path.join(dir, "server.crt"), keyFile: path.join(dir, "server.key"),
    clientCertFile: path.join(dir, "client.crt"), clientKeyFile: path.join(dir, "client.key"), ca: fs.readFileSync(caFile, "utf8"),
  };
}
