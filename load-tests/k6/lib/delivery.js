/**
 * Live delivery accounting of one VU, by `seq` (gapless per conversation, CONTRACT.md §3).
 *
 * The VU learns that a seq exists from its own sends' acknowledgements, from any arrival on any of
 * its connections (seq n proves 1..n), and from join acknowledgements (`lastSeq`). Every connection
 * joined to the room ("member", from the `lastSeq` of its first join) must then receive it, live or
 * by catch-up after a reconnect, within DELIVERY_TIMEOUT_MS of that moment: one `delivery_ratio`
 * sample per (member, seq), true on arrival in time, false when the deadline passes (swept every
 * SWEEP_MS) or when the run ends without it. So the ratio and `messages_missing` move during the
 * run, and `abortOnFail` can stop a run whose delivery is broken.
 */
import { deliveryRatio, e2eLatency, messagesDelivered, messagesLate, messagesMissing } from "./metrics.js";

/** The text of a stamped message: its send time travels in the body, so it survives a reconnect. */
export function stampText(runId, sender, n, sentAt) {
  return "k6|" + runId + "|" + sentAt + "|" + sender + "|" + n;
}

/** The send time in a text stamped by this run, or NaN. */
export function sentAtOf(text, runId) {
  const prefix = "k6|" + runId + "|";
  if (typeof text !== "string" || text.indexOf(prefix) !== 0) return NaN;
  const end = text.indexOf("|", prefix.length);
  return end > prefix.length ? Number(text.slice(prefix.length, end)) : NaN;
}

const TRUE = 1;
const FALSE = 2;

/**
 * opts: { timeoutMs, runId, tags: () => object | undefined }. Returns the tracker; every method
 * takes `now` (ms) so that the caller's clock is the only one.
 */
export function createDeliveryTracker(opts) {
  const timeoutMs = opts.timeoutMs;
  const tagsOf = opts.tags || (() => undefined);
  const rooms = {};

  function room(id) {
    let r = rooms[id];
    if (!r) {
      r = { known: 0, knownAt: {}, members: [], low: 1 };
      rooms[id] = r;
    }
    return r;
  }

  function know(id, seq, now) {
    const r = room(id);
    if (!(seq > r.known)) return;
    for (let s = r.known + 1; s <= seq; s++) r.knownAt[s] = now;
    r.known = seq;
  }

  function decideFalse(m, s) {
    m.state[s] = FALSE;
    const tags = tagsOf();
    deliveryRatio.add(false, tags);
    messagesMissing.add(1, tags);
  }

  function advance(m) {
    for (;;) {
      const st = m.state[m.next];
      if (st === undefined) break;
      if (st === FALSE) m.falses[m.next] = true;
      delete m.state[m.next];
      m.next++;
    }
  }

  function sweepMember(m, r, now) {
    for (let s = m.next; s <= r.known; s++) {
      if (m.state[s] !== undefined) continue;
      // knownAt grows with s: the first seq still in time ends the sweep.
      if (now - r.knownAt[s] <= timeoutMs) break;
      decideFalse(m, s);
    }
    advance(m);
  }

  function prune(r) {
    let low = r.known + 1;
    for (const m of r.members) if (m.open && m.next < low) low = m.next;
    for (let s = r.low; s < low; s++) delete r.knownAt[s];
    if (low > r.low) r.low = low;
  }

  return {
    know: know,

    /** A connection joined `roomId` when its last seq was `from`; it must receive every later one. */
    member(roomId, from, now) {
      const r = room(roomId);
      know(roomId, from, now);
      // Seqs the VU learnt before this join and has pruned since: expected from now on.
      for (let s = from + 1; s <= r.known; s++) if (r.knownAt[s] === undefined) r.knownAt[s] = now;
      if (from + 1 < r.low) r.low = from + 1;
      const m = { room: roomId, next: from + 1, state: {}, falses: {}, open: true };
      r.members.push(m);
      return m;
    },

    /**
     * The first arrival of `msg` on member `m` (`via`: live | catch_up); records the outcome and the
     * end-to-end latency from the stamp in the body.
     */
    receive(m, msg, via, now) {
      if (!m.open) return;
      const seq = msg.seq;
      const tags = tagsOf();
      let late = false;
      if (seq < m.next) {
        // Decided already: true ones were pruned, false ones are kept until they arrive.
        if (!m.falses[seq]) return;
        delete m.falses[seq];
        late = true;
      } else {
        const st = m.state[seq];
        if (st === TRUE || st === TRUE + FALSE) return;
        if (st === FALSE) {
          m.state[seq] = TRUE + FALSE;
          late = true;
        } else {
          know(m.room, seq, now);
          // A seq learnt long ago that only now arrives is late, whether or not a sweep has run since.
          if (now - rooms[m.room].knownAt[seq] > timeoutMs) {
            decideFalse(m, seq);
            m.state[seq] = TRUE + FALSE;
            late = true;
          } else {
            m.state[seq] = TRUE;
            deliveryRatio.add(true, tags);
          }
          advance(m);
        }
      }
      messagesDelivered.add(1, tags);
      if (late) messagesLate.add(1, tags);
      const t = sentAtOf(msg.message, opts.runId);
      if (!isNaN(t)) e2eLatency.add(now - t, Object.assign({ via: via }, tags));
    },

    /** Decides every (member, seq) whose deadline has passed. */
    sweep(now) {
      for (const id in rooms) {
        const r = rooms[id];
        for (const m of r.members) if (m.open) sweepMember(m, r, now);
        prune(r);
      }
    },

    /**
     * The member's connection ends on purpose: what was overdue is missing, what was still in time
     * is not counted (nobody was there to receive it), and nothing later is expected.
     */
    leave(m, now) {
      if (!m.open) return;
      sweepMember(m, rooms[m.room], now);
      m.open = false;
    },

    /** End of the run: `lastSeqOf(roomId)` (a number or undefined) closes every room; all undecided is missing. */
    finish(lastSeqOf, now) {
      for (const id in rooms) {
        const last = lastSeqOf(id);
        if (typeof last === "number") know(id, last, now);
        const r = rooms[id];
        for (const m of r.members) {
          if (m.open) sweepMember(m, r, Infinity);
          m.open = false;
        }
      }
    },

    /** Rooms and their highest known seq, for the final reconciliation. */
    rooms() {
      return Object.keys(rooms);
    },
  };
}
