/**
 * Where the next wave of reconnections should land. WebSockets stay on the node that accepted them,
 * so a node fills only from new connections: a drained node's clients reconnecting, new clients.
 * When the launcher is about to start such a wave (draining a node in a rolling restart or a
 * scale-in), it gives the weights of nginx's placement upstream (`chat_place`, weighted round robin,
 * local.conf.template) in proportion to how far each remaining node is below the even share it
 * will have once the wave has landed: the drained node's clients, whose sticky cookie now names a
 * retired node, are placed in those proportions. Afterwards every weight is 1 again. The sticky
 * upstream's ring never takes weights, so steering placement moves no session.
 *
 * nginx's own `least_conn` cannot do this here: its counters live in the workers (or in a zone
 * that a reload recreates), so after the reload that marks the node `down` the new workers count
 * from zero and know nothing of the WebSockets the retiring workers still hold.
 */

/** Highest weight handed to nginx: the emptiest node gets about 100 times the share of a full one. */
export const MAX_WEIGHT = 100;

/**
 * Weights (1..MAX_WEIGHT) for the `takers`, given the connections each node holds now (`counts`)
 * and how many will arrive (`arriving`): proportional to each taker's shortfall below the even
 * share. All 1 when nobody is short (already even, or nothing arrives).
 */
export function fillWeights(counts: Readonly<Record<string, number>>, takers: readonly string[], arriving: number): Record<string, number> {
  const weights: Record<string, number> = {};
  if (takers.length === 0) return weights;
  const held = takers.map((id) => Math.max(0, counts[id] ?? 0));
  const share = (held.reduce((a, b) => a + b, 0) + Math.max(0, arriving)) / takers.length;
  const short = held.map((c) => Math.max(0, share - c));
  const most = Math.max(...short);
  takers.forEach((id, i) => {
    weights[id] = most < 1 ? 1 : Math.max(1, Math.round((MAX_WEIGHT * short[i]!) / most));
  });
  return weights;
}

/** The busiest node's connections over the least busy one's (Infinity when one holds none and another some; 1 when all hold none). */
export function spreadRatio(counts: readonly number[]): number {
  if (counts.length === 0) return 1;
  const most = Math.max(...counts);
  const least = Math.min(...counts);
  if (most === 0) return 1;
  return least === 0 ? Number.POSITIVE_INFINITY : most / least;
}
