/**
 * The Kubernetes manifests (infra/k8s), rendered with `kubectl kustomize` as `kubectl apply -k`
 * would, base and production overlay, and read as YAML: every variable given to the node is one it
 * knows and its values load as the node loads them; the probes name paths a real node answers
 * (liveness 200 whatever Redis does, readiness /readyz); the grace period outlasts preStop plus the
 * drain deadline; selectors, ports and names line up; the ingress is sticky by cookie with timeouts
 * above Socket.IO's heartbeat (read from a real node's handshake); no secret value is rendered.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { parseAllDocuments } from "yaml";
import { CONFIG_VARIABLES, loadConfig } from "@chat/chat-node/config";
import { REPO_ROOT, TEST_SECRET, closeAllSockets, connectUser, freePort, hasOpenssl, makeCertificates, startNode, stopAll, type NodeHandle } from "@chat/test-kit";

const K8S = path.join(REPO_ROOT, "infra/k8s");
const kubectl = spawnSync("kubectl", ["version", "--client"], { encoding: "utf8" });
const skip = kubectl.error ? "kubectl is not installed here (it renders the kustomizations); install it to run these tests" : false;
if (skip) console.log(`# skipped: ${skip}`);

/* The shapes read from the rendered YAML: only what the tests look at. */
interface Meta { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
interface Obj { apiVersion: string; kind: string; metadata: Meta; spec?: unknown; data?: Record<string, string>; stringData?: Record<string, string> }
interface Probe { httpGet?: { path: string; port: string | number } }
interface Container {
  name: string;
  image: string;
  ports?: { name?: string; containerPort: number }[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string } } }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { sleep?: { seconds: number }; exec?: { command: string[] } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec { terminationGracePeriodSeconds?: number; containers: Container[]; volumes?: { name: string; secret?: { secretName: string } }[] }
interface DeploymentSpec { replicas?: number; selector: { matchLabels: Record<string, string> }; template: { metadata: Meta; spec: PodSpec } }

function render(dir: string): Obj[] {
  const r = spawnSync("kubectl", ["kustomize", dir], { encoding: "utf8" });
  assert.equal(r.status, 0, `kubectl kustomize ${dir} failed:\n${r.stderr}`);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj);
}

function one(objs: Obj[], kind: string): Obj {
  const found = objs.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `one ${kind}, got ${found.length}`);
  return found[0]!;
}

const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) => Object.entries(selector).every(([k, v]) => labels[k] === v);

/** The node's environment as the pod would get it: the ConfigMap, then `env` (fieldRefs and Secrets filled in as the kubelet would). */
function podEnv(objs: Obj[], c: Container, secrets: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    if (from.configMapRef) {
      const cm = objs.find((o) => o.kind === "ConfigMap" && o.metadata.name === from.configMapRef!.name);
      assert.ok(cm, `envFrom names ConfigMap ${from.configMapRef.name}, which is not rendered`);
      Object.assign(env, cm.data);
    }
    assert.equal(from.secretRef, undefined, "secrets come by key (secretKeyRef), so that each one is named");
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef) env[e.name] = "chat-node-6d4f8b7c9-x2k4z";
    else if (e.valueFrom?.secretKeyRef) env[e.name] = secrets[e.valueFrom.secretKeyRef.key] ?? assert.fail(`no test value for secret key ${e.valueFrom.secretKeyRef.key}`);
  }
  return env;
}

const known = new Set<string>(CONFIG_VARIABLES);
let node: NodeHandle;
let heartbeatMs = 0;

describe("the Kubernetes manifests", { skip }, () => {
  before(async () => {
    // A real node, to check that the probes' paths answer and to read Socket.IO's heartbeat.
    node = await startNode({ NODE_ID: "k8s-probe" });
    const text = await (await fetch(`${node.url}/socket.io/?EIO=4&transport=polling`)).text();
    const open = JSON.parse(text.slice(1)) as { pingInterval: number; pingTimeout: number };
    heartbeatMs = open.pingInterval + open.pingTimeout;
  });
  after(async () => {
    closeAllSockets();
    await stopAll();
  });

  for (const variant of ["base", "overlays/production"]) {
    describe(variant, () => {
      let objs: Obj[];
      let deployment: Obj & { spec: DeploymentSpec };
      let container: Container;
      before(() => {
        objs = render(path.join(K8S, variant));
        deployment = one(objs, "Deployment") as Obj & { spec: DeploymentSpec };
        const containers = deployment.spec.template.spec.containers;
        assert.equal(containers.length, 1);
        container = containers[0]!;
      });

      it("gives the node only variables it knows, with values it loads", () => {
        const env = podEnv(objs, container, { JWT_SECRET: "k8s-test-secret-0123456789abcdef" });
        const unknown = Object.keys(env).filter((k) => !known.has(k));
        assert.deepEqual(unknown, [], `variables the node does not read (services/chat-node/src/config.ts): ${unknown.join(", ")}`);
        for (const required of ["JWT_SECRET", "NODE_ID", "REDIS_URL", "MONGO_URL", "SHUTDOWN_TIMEOUT_MS", "PORT"]) assert.ok(required in env, `${required} is given`);
        // A file the pod mounts is replaced by one of the same kind made here (the CA of a Secret).
        if (env.REDIS_TLS_CA_FILE) {
          const mounted = (container.volumeMounts ?? []).some((m) => env.REDIS_TLS_CA_FILE!.startsWith(`${m.mountPath}/`));
          assert.ok(mounted, `REDIS_TLS_CA_FILE ${env.REDIS_TLS_CA_FILE} is under a volume mount`);
          if (!hasOpenssl()) return void console.log("# values not loaded: openssl is not installed to make a stand-in CA");
          env.REDIS_TLS_CA_FILE = makeCertificates().caFile;
        }
        const config = loadConfig(env);
        assert.equal(config.nodeEnv, "production");
        assert.equal(config.devTokens, false);
        assert.equal(config.host, "0.0.0.0", "reachable from the kubelet and the ingress");
        assert.ok(config.redisUrl && config.mongoUrl, "Redis and MongoDB as external URLs");
      });

      it("takes JWT_SECRET from a Secret that is not rendered: no secret value in git", () => {
        const jwt = container.env?.find((e) => e.name === "JWT_SECRET");
        assert.ok(jwt?.valueFrom?.secretKeyRef, "JWT_SECRET from a secretKeyRef");
        assert.equal(jwt.value, undefined);
        assert.deepEqual(objs.filter((o) => o.kind === "Secret"), [], "no Secret is rendered (created with kubectl create secret, docs/kubernetes.md)");
        for (const cm of objs.filter((o) => o.kind === "ConfigMap")) {
          assert.ok(!Object.keys(cm.data ?? {}).some((k) => /SECRET|PASSWORD|TOKEN/.test(k)), `ConfigMap ${cm.metadata.name} holds no secret`);
          for (const v of Object.values(cm.data ?? {})) assert.doesNotMatch(v, /\/\/[^/@]*:[^/@]*@/, "no credentials in a URL of the ConfigMap");
        }
      });

      it("probes paths a real node answers: readiness /readyz, liveness /healthz, on the container's port", async () => {
        assert.equal(container.readinessProbe?.httpGet?.path, "/readyz");
        assert.equal(container.livenessProbe?.httpGet?.path, "/healthz");
        const portNames = new Set((container.ports ?? []).map((p) => p.name));
        for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) {
          if (!probe) continue;
          assert.ok(probe.httpGet && portNames.has(String(probe.httpGet.port)), `probe port ${probe.httpGet?.port} is a named container port`);
          const res = await fetch(`${node.url}${probe.httpGet.path}`);
          assert.equal(res.status, 200, `GET ${probe.httpGet.path} on a real node`);
        }
        const port = Number(podEnv(objs, container, { JWT_SECRET: "x".repeat(16) }).PORT);
        assert.deepEqual(container.ports?.map((p) => p.containerPort), [port], "the container port is the node's PORT");
      });

      it("outlasts preStop plus the drain deadline before SIGKILL", () => {
        const env = podEnv(objs, container, { JWT_SECRET: "x".repeat(16) });
        const shutdownMs = Number(env.SHUTDOWN_TIMEOUT_MS);
        const preStop = container.lifecycle?.preStop;
        const preStopS = preStop?.sleep?.seconds ?? Number(preStop?.exec?.command.at(-1));
        assert.ok(preStopS >= 5, `a preStop of at least 5 s lets the endpoint removal reach the ingress, got ${preStopS}`);
        const grace = deployment.spec.template.spec.terminationGracePeriodSeconds;
        assert.ok(grace !== undefined, "terminationGracePeriodSeconds is set");
        assert.ok(grace * 1000 > preStopS * 1000 + shutdownMs, `grace ${grace} s must exceed preStop ${preStopS} s + SHUTDOWN_TIMEOUT_MS ${shutdownMs} ms`);
      });

      it("a node started with this environment, its Redis and MongoDB not answering, drains on SIGTERM and exits 0 before the kubelet's SIGKILL", async () => {
        const env = podEnv(objs, container, { JWT_SECRET: TEST_SECRET });
        const preStop = container.lifecycle?.preStop;
        const preStopS = preStop?.sleep?.seconds ?? Number(preStop?.exec?.command.at(-1));
        const grace = deployment.spec.template.spec.terminationGracePeriodSeconds ?? 30;
        const dead = await freePort(); // nothing listens: the external services are away
        delete env.PORT; // a free port here, not the pod's 3001
        const pod = await startNode({
          ...env,
          HOST: "127.0.0.1",
          DEV_INSECURE_TOKENS: "0",
          NODE_ID: `k8s-drain-${variant.replace(/\W/g, "-")}`,
          REDIS_URL: `redis://127.0.0.1:${dead}`,
          MONGO_URL: `mongodb://127.0.0.1:${dead}/?replicaSet=rs0&serverSelectionTimeoutMS=1000`,
          REDIS_TLS_CA_FILE: "",
        });
        const ready = await fetch(`${pod.url}/readyz`);
        assert.equal(ready.status, 503, "not ready while its store and Redis do not answer");
        assert.equal((await fetch(`${pod.url}/healthz`)).status, 200, "alive all the same: liveness keeps it");
        const socket = await connectUser(pod.url, "k8s-drain-user");
        const closed = new Promise<void>((resolve) => socket.once("disconnect", () => resolve()));
        // What the kubelet does after preStop: SIGTERM, then SIGKILL when the rest of the grace period is over.
        const t0 = Date.now();
        const code = await pod.stop("SIGTERM", (grace - preStopS) * 1000);
        console.log(`# drained in ${Date.now() - t0} ms`);
        assert.equal(code, 0, `exit code ${code} (null: killed at the end of the grace period)\n${pod.output().slice(-2000)}`);
        await closed;
      });

      it("sets resource requests and limits", () => {
        for (const r of ["cpu", "memory"]) assert.ok(container.resources?.requests?.[r], `requests.${r}`);
        assert.ok(container.resources?.limits?.memory, "limits.memory");
      });

      it("lines up selectors, labels, names and ports; the HPA owns the replica count", () => {
        const podLabels = deployment.spec.template.metadata.labels;
        assert.ok(matches(deployment.spec.selector.matchLabels, podLabels), "the Deployment's selector matches its pods");
        assert.equal(deployment.spec.replicas, undefined, "no replicas: kubectl apply would reset the HPA's count");
        const service = one(objs, "Service") as Obj & { spec: { selector: Record<string, string>; ports: { name: string; port: number; targetPort: string | number }[] } };
        assert.ok(matches(service.spec.selector, podLabels), "the Service selects the pods");
        const names = new Set((container.ports ?? []).map((p) => p.name));
        for (const p of service.spec.ports) assert.ok(names.has(String(p.targetPort)), `Service targetPort ${p.targetPort} is a container port`);
        const pdb = one(objs, "PodDisruptionBudget") as Obj & { spec: { selector: { matchLabels: Record<string, string> }; maxUnavailable?: number; minAvailable?: number } };
        assert.ok(matches(pdb.spec.selector.matchLabels, podLabels), "the PDB selects the pods");
        assert.ok(pdb.spec.maxUnavailable !== undefined || pdb.spec.minAvailable !== undefined);
        const hpa = one(objs, "HorizontalPodAutoscaler") as Obj & { spec: { scaleTargetRef: { kind: string; name: string }; minReplicas: number; maxReplicas: number } };
        assert.deepEqual([hpa.spec.scaleTargetRef.kind, hpa.spec.scaleTargetRef.name], ["Deployment", deployment.metadata.name]);
        assert.ok(hpa.spec.minReplicas >= 2 && hpa.spec.maxReplicas > hpa.spec.minReplicas);
        if (pdb.spec.maxUnavailable !== undefined) assert.ok(pdb.spec.maxUnavailable < hpa.spec.minReplicas, "the PDB leaves pods serving");
        const ingress = one(objs, "Ingress") as Obj & { spec: { rules: { http: { paths: { backend: { service: { name: string; port: { name?: string; number?: number } } } }[] } }[] } };
        for (const rule of ingress.spec.rules) {
          for (const p of rule.http.paths) {
            assert.equal(p.backend.service.name, service.metadata.name);
            assert.ok(service.spec.ports.some((sp) => sp.name === p.backend.service.port.name || sp.port === p.backend.service.port.number), "the Ingress names a Service port");
          }
        }
        for (const v of deployment.spec.template.spec.volumes ?? []) assert.ok((container.volumeMounts ?? []).some((m) => m.name === v.name), `volume ${v.name} is mounted`);
        const namespaces = new Set(objs.map((o) => o.metadata.namespace));
        assert.equal(namespaces.size, 1, "every object in one namespace");
      });

      it("has an ingress-nginx Ingress with cookie affinity and WebSocket timeouts above Socket.IO's heartbeat", () => {
        const ingress = one(objs, "Ingress") as Obj & { spec: { ingressClassName?: string } };
        const a = ingress.metadata.annotations ?? {};
        assert.equal(ingress.spec.ingressClassName, "nginx");
        assert.equal(a["nginx.ingress.kubernetes.io/affinity"], "cookie");
        assert.equal(a["nginx.ingress.kubernetes.io/affinity-mode"], "persistent", "scaling out keeps clients on their pod");
        assert.ok(a["nginx.ingress.kubernetes.io/session-cookie-name"]);
        assert.ok(heartbeatMs > 0);
        for (const k of ["proxy-read-timeout", "proxy-send-timeout"]) {
          const s = Number(a[`nginx.ingress.kubernetes.io/${k}`]);
          assert.ok(s * 1000 > heartbeatMs, `${k} ${s} s must exceed pingInterval + pingTimeout (${heartbeatMs} ms)`);
        }
        assert.doesNotMatch(a["nginx.ingress.kubernetes.io/proxy-next-upstream"] ?? "", /non_idempotent/, "a POST that was sent is never replayed");
      });
    });
  }

  it("the production overlay: a namespace, a pinned image, TLS on the ingress, the Redis CA mounted from a Secret", () => {
    const objs = render(path.join(K8S, "overlays/production"));
    assert.ok(objs.every((o) => o.metadata.namespace === "chat"));
    const d = one(objs, "Deployment") as Obj & { spec: DeploymentSpec };
    const c = d.spec.template.spec.containers[0]!;
    assert.match(c.image, /^[^:]+\/[^:]+:[^:]+$/);
    assert.doesNotMatch(c.image, /:latest$/);
    const ingress = one(objs, "Ingress") as Obj & { spec: { tls?: { hosts: string[]; secretName: string }[] } };
    assert.ok(ingress.spec.tls?.[0]?.secretName);
    assert.equal(ingress.metadata.annotations?.["nginx.ingress.kubernetes.io/session-cookie-secure"], "true");
    const cm = objs.find((o) => o.kind === "ConfigMap")!;
    assert.match(cm.data?.REDIS_URL ?? "", /^rediss:\/\//);
    assert.ok(d.spec.template.spec.volumes?.some((v) => v.secret?.secretName === "redis-ca"));
  });
});
