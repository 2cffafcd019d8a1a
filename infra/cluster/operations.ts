/**
 * What an operator does to a running local cluster: restart one node, restart all of them one at a
 * time (a rolling restart), add a node, remove one. Each operation drives the node processes
 * (nodes.ts) and nginx's upstream list (nginx.ts) so that, as long as one node is ready, new
 * handshakes and REST calls always find a node, and so that connections end up spread evenly:
 *
 * - A node is drained only after nginx was reloaded with it marked `down`: no new request reaches
 *   it, and what it held reconnects through nginx to the others (its sockets close; the clients'
 *   sticky cookies name a node nginx now treats as retired, so their handshakes are placed anew).
 * - A restarted node is put back into the upstream as soon as `/readyz` answers 200.
 * - The reconnection wave of each drain is steered by weights (balance.ts) to the nodes below the
 *   even share. A rolling restart first adds one extra node (surge, as Kubernetes' default
 *   `maxSurge`), so the first drained node's clients have an empty node to go to, each restarted node
 *   is filled by the next drain, and the surge node's clients fill the last one when it is removed:
 *   every client reconnects once and the nodes end even. Without the surge node (`surge: false`) the
 *   last node restarted stays empty until clients reconnect for other reasons.
 *
 * One operation runs at a time; a second one is refused with BusyError.
 */
import { fillWeights } from "./balance.ts";
import type { UpstreamServer } from "./nginx.ts";
import type { ClusterNode } from "./nodes.ts";

export class BusyError extends Error {
  override name = "BusyError";
}

export interface OperationDeps {
  /** The cluster's nodes, in upstream order; operations add and remove entries in place. */
  nodes: ClusterNode[];
  /** Reloads nginx with this upstream list and resolves once the new workers serve. */
  reloadUpstream(servers: UpstreamServer[]): Promise<void>;
  /** Creates, starts and readies a node with the next free id and port (not yet in `nodes`). */
  newNode(): Promise<ClusterNode>;
  /** Called after `nodes` changed (Prometheus' targets). */
  nodesChanged(): Promise<void>;
}

export type Log = (line: string) => void;

export interface StepReport {
  nodeId: string;
  /** SIGTERM to exit (absent when the node was not running). */
  drainMs?: number;
  exitCode?: number | null;
  /** Start to /readyz 200. */
  startMs?: number;
}

export interface OperationReport {
  operation: string;
  durationMs: number;
  steps: StepReport[];
  /** Connections per node before and after (chat_connected_sockets of each node). */
  before: Record<string, number>;
  after: Record<string, number>;
}

export interface RollingOptions {
  /** Add one node for the duration, so that the last node restarted is filled too (default true). */
  surge?: boolean;
  log?: Log;
}

const quiet: Log = () => undefined;

export class ClusterOperations {
  private readonly d: OperationDeps;
  private busy: { name: string; since: number } | undefined;
  private readonly weights = new Map<string, number>();
  private readonly down = new Set<string>();

  constructor(deps: OperationDeps) {
    this.d = deps;
  }

  /** The operation running now, if any. */
  running(): string | undefined {
    return this.busy?.name;
  }

  /** Connections per running node, from each node's own metrics (0 when it does not answer). */
  async connections(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    await Promise.all(this.d.nodes.map(async (n) => (out[n.nodeId] = (await n.connections()) ?? 0)));
    return Object.fromEntries(this.d.nodes.map((n) => [n.nodeId, out[n.nodeId] ?? 0]));
  }

  restartNode(nodeId: string, log: Log = quiet): Promise<OperationReport> {
    return this.exclusive(`restart ${nodeId}`, async () => {
      const node = this.find(nodeId);
      const step = await this.cycle(node, { steer: false, log });
      await this.apply({ even: true });
      return [step];
    });
  }

  rollingRestart(o: RollingOptions = {}): Promise<OperationReport> {
    const log = o.log ?? quiet;
    return this.exclusive("rolling restart", async () => {
      const original = [...this.d.nodes];
      const steps: StepReport[] = [];
      let surge: ClusterNode | undefined;
      if (o.surge ?? true) {
        surge = await this.d.newNode();
        this.d.nodes.push(surge);
        await this.apply({ even: true });
        await this.d.nodesChanged();
        log(`surge node ${surge.nodeId} ready on port ${surge.port}`);
      }
      for (const [i, node] of original.entries()) {
        log(`[${i + 1}/${original.length}] ${node.nodeId}: draining`);
        steps.push(await this.cycle(node, { steer: true, log }));
      }
      if (surge) {
        await this.retire(surge, log);
        log(`surge node ${surge.nodeId} removed`);
      }
      await this.apply({ even: true });
      return steps;
    });
  }

  addNode(log: Log = quiet): Promise<OperationReport> {
    return this.exclusive("add node", async () => {
      const node = await this.d.newNode();
      this.d.nodes.push(node);
      await this.apply({ even: true });
      await this.d.nodesChanged();
      log(`${node.nodeId} added on port ${node.port}, pid ${node.pid}`);
      return [{ nodeId: node.nodeId }];
    });
  }

  /** Removes `nodeId`, or the most recently added node. */
  removeNode(nodeId?: string, log: Log = quiet): Promise<OperationReport> {
    return this.exclusive(`remove ${nodeId ?? "a node"}`, async () => {
      if (this.d.nodes.length <= 1) throw new Error("the cluster's last node cannot be removed");
      const node = nodeId ? this.find(nodeId) : this.d.nodes.at(-1)!;
      const step = await this.retire(node, log);
      await this.apply({ even: true });
      log(`${node.nodeId} removed`);
      return [step];
    });
  }

  private find(nodeId: string): ClusterNode {
    const node = this.d.nodes.find((n) => n.nodeId === nodeId);
    if (!node) throw new Error(`no node ${nodeId}; the nodes are ${this.d.nodes.map((n) => n.nodeId).join(", ")}`);
    return node;
  }

  private async exclusive(name: string, run: () => Promise<StepReport[]>): Promise<OperationReport> {
    if (this.busy) throw new BusyError(`${this.busy.name} is running (for ${Math.round((Date.now() - this.busy.since) / 1000)} s); try again when it is done`);
    this.busy = { name, since: Date.now() };
    const t0 = Date.now();
    try {
      const before = await this.connections();
      const steps = await run();
      return { operation: name, durationMs: Date.now() - t0, steps, before, after: await this.connections() };
    } finally {
      this.busy = undefined;
    }
  }

  /** Reloads nginx with the nodes, their weights and `down` marks (`even`: every weight 1, nothing down). */
  private async apply(o: { even?: boolean } = {}): Promise<void> {
    if (o.even) {
      this.weights.clear();
      this.down.clear();
    }
    await this.d.reloadUpstream(this.d.nodes.map((n) => ({ port: n.port, weight: this.weights.get(n.nodeId) ?? 1, down: this.down.has(n.nodeId) })));
  }

  /**
   * Marks `node` down and, with `steer`, weights the others towards the even share; drains it
   * (SIGTERM) and waits for its exit. Returns how many connections it held.
   */
  private async drain(node: ClusterNode, steer: boolean, step: StepReport): Promise<number> {
    const counts = await this.connections();
    const held = counts[node.nodeId] ?? 0;
    const takers = this.d.nodes.filter((n) => n !== node && n.running() && !this.down.has(n.nodeId)).map((n) => n.nodeId);
    this.weights.clear();
    if (steer) for (const [id, w] of Object.entries(fillWeights(counts, takers, held))) this.weights.set(id, w);
    this.down.add(node.nodeId);
    await this.apply();
    const t0 = Date.now();
    step.exitCode = await node.stop("SIGTERM");
    step.drainMs = Date.now() - t0;
    return held;
  }

  /** Drain (when running), exit, start on the same port, ready, back in the upstream. */
  private async cycle(node: ClusterNode, o: { steer: boolean; log: Log }): Promise<StepReport> {
    const step: StepReport = { nodeId: node.nodeId };
    const total = Object.values(await this.connections()).reduce((a, b) => a + b, 0);
    if (node.running()) {
      await this.drain(node, o.steer, step);
      o.log(`  ${node.nodeId}: exited ${step.exitCode} after ${step.drainMs} ms; starting again on port ${node.port}`);
    } else {
      this.down.add(node.nodeId);
      o.log(`  ${node.nodeId}: was not running; starting it on port ${node.port}`);
    }
    const t0 = Date.now();
    await node.restart();
    await node.waitReady();
    step.startMs = Date.now() - t0;
    // Back at once; while the wave of its drain still lands, the emptiest nodes (it, now) weigh most.
    this.down.delete(node.nodeId);
    this.weights.clear();
    if (o.steer) {
      const counts = await this.connections();
      const takers = this.d.nodes.filter((n) => n.running() && !this.down.has(n.nodeId)).map((n) => n.nodeId);
      const landed = Object.values(counts).reduce((a, b) => a + b, 0);
      for (const [id, w] of Object.entries(fillWeights(counts, takers, Math.max(0, total - landed)))) this.weights.set(id, w);
    }
    await this.apply();
    o.log(`  ${node.nodeId}: ready after ${step.startMs} ms`);
    if (o.steer) await this.settle(total);
    return step;
  }

  /** Drains `node` with the others weighted to absorb its clients, then forgets it. */
  private async retire(node: ClusterNode, log: Log): Promise<StepReport> {
    const step: StepReport = { nodeId: node.nodeId };
    const total = Object.values(await this.connections()).reduce((a, b) => a + b, 0);
    if (node.running()) {
      await this.drain(node, true, step);
      log(`  ${node.nodeId}: exited ${step.exitCode} after ${step.drainMs} ms`);
    }
    this.d.nodes.splice(this.d.nodes.indexOf(node), 1);
    this.down.delete(node.nodeId);
    this.weights.delete(node.nodeId);
    await this.apply();
    await this.d.nodesChanged();
    await this.settle(total);
    return step;
  }

  /**
   * Waits (at most 10 s) until the connections a drain sent away have landed: the total is back to
   * `total`, or has not grown for a second (some clients may not come back).
   */
  private async settle(total: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    let last = -1;
    let stableSince = Date.now();
    while (Date.now() < deadline) {
      const now = Object.values(await this.connections()).reduce((a, b) => a + b, 0);
      if (now >= total) return;
      if (now !== last) {
        last = now;
        stableSince = Date.now();
      } else if (Date.now() - stableSince >= 1000) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
