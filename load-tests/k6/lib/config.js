/**
 * Configuration of the scenarios: `-e NAME=value` variables, read once in the init context and
 * checked there, so that a malformed value stops k6 before any load (exit 107) with a message
 * naming the variable, instead of turning into NaN thresholds or a silent default.
 */

/** BASE_URL: nginx of `pnpm cluster` / compose (default), or one node. */
export const BASE_URL = String(__ENV.BASE_URL || "http://localhost:8080").replace(/\/+$/, "");

/** BASE_URL without user:password@, for anything printed or written. */
export const BASE_URL_SHOWN = BASE_URL.replace(/\/\/[^/@]*@/, "//");

const RUN_ID_RE = /^[A-Za-z0-9._-]{1,40}$/;

/**
 * The run id in user ids and summary file names. Taken once in setup() (runIdForSetup) and handed
 * to every VU and to handleSummary through the setup data: each VU's init context would otherwise
 * read its own clock.
 */
export function runIdForSetup() {
  const v = __ENV.RUN_ID;
  if (v === undefined || v === "") return String(Date.now());
  return v;
}
if (__ENV.RUN_ID !== undefined && __ENV.RUN_ID !== "" && !RUN_ID_RE.test(__ENV.RUN_ID)) {
  throw new Error("RUN_ID=" + __ENV.RUN_ID + " must be 1-40 characters of A-Z a-z 0-9 . _ - (it goes into user ids and file names)");
}

function raw(name) {
  const v = __ENV[name];
  return v === undefined || v === "" ? undefined : String(v);
}

/** An integer variable (counts, milliseconds, seconds), or `dflt` when unset or empty. */
export function envInt(name, dflt, min) {
  const v = raw(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  const lo = min === undefined ? 0 : min;
  if (!Number.isInteger(n) || n < lo) throw new Error(name + "=" + v + " must be an integer >= " + lo);
  return n;
}

/** A number variable (ratios, margins, rates that may be fractional), or `dflt`. */
export function envNum(name, dflt, min) {
  const v = raw(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  const lo = min === undefined ? 0 : min;
  if (!isFinite(n) || n < lo) throw new Error(name + "=" + v + " must be a number >= " + lo);
  return n;
}

/** A 0/1 switch. */
export function envFlag(name, dflt) {
  const v = raw(name);
  if (v === undefined) return dflt;
  if (v !== "0" && v !== "1") throw new Error(name + "=" + v + " must be 0 or 1");
  return v === "1";
}

/** One of `choices`. */
export function envChoice(name, choices, dflt) {
  const v = raw(name);
  if (v === undefined) return dflt;
  if (choices.indexOf(v) < 0) throw new Error(name + "=" + v + " must be one of " + choices.join(", "));
  return v;
}

/**
 * The statistics of every trend in the end-of-test summary and its JSON file. k6's default is
 * avg, min, med, max, p(90), p(95): without p(99) here a `p(99)<...` threshold is evaluated but its
 * value never shown. The suite's test checks that this covers every percentile a threshold uses.
 */
export const SUMMARY_TREND_STATS = ["avg", "min", "med", "max", "p(90)", "p(95)", "p(99)", "count"];

/** A k6 duration string for `ms` milliseconds, rounded up to whole seconds. */
export function seconds(ms) {
  return Math.max(1, Math.ceil(ms / 1000)) + "s";
}

/**
 * A threshold that stops the run at once (k6 exits 99) when `expr` fails after `delayMs` of test
 * time: for a state where running on measures nothing (the cluster is down, delivery is broken).
 */
export function abortUnless(expr, delayMs) {
  return { threshold: expr, abortOnFail: true, delayAbortEval: seconds(delayMs) };
}

/**
 * Reconnection of the scenarios that model real users, socket.io-client's defaults: RECONNECT
 * (0/1; `dfltOn` is the scenario's default), RECONNECT_DELAY_MS, RECONNECT_DELAY_MAX_MS,
 * RECONNECT_JITTER, RECONNECT_ATTEMPTS (0: unlimited, as `reconnectionAttempts: Infinity`).
 */
export function reconnectConfig(dfltOn) {
  return {
    enabled: envFlag("RECONNECT", dfltOn),
    min: envInt("RECONNECT_DELAY_MS", 1000, 1),
    max: envInt("RECONNECT_DELAY_MAX_MS", 5000, 1),
    jitter: envNum("RECONNECT_JITTER", 0.5),
    attempts: envInt("RECONNECT_ATTEMPTS", 0),
  };
}
