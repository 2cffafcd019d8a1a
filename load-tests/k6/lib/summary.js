/**
 * handleSummary for every scenario: k6's own text summary (./text-summary.js) on stdout and in
 * `k6-<scenario>-<run id>-summary.txt`, the full summary object in `...-summary.json`, both in
 * SUMMARY_DIR (default: the working directory), and a few lines saying what the run offered.
 *
 * No secret leaves the run: `setup_data` (every minted token) is dropped from what is printed and
 * written, and BASE_URL is shown without credentials.
 *
 * k6 does not create directories and only logs (exit code unchanged) when it cannot write a file
 * handleSummary returns. So a SUMMARY_DIR given as an absolute path is checked in the init context
 * before any load: k6's `open()` of a directory fails with "can't be used with directories", of a
 * missing path with "no such file"; the latter stops the run (exit 107) with the variable named.
 * (A relative SUMMARY_DIR is resolved by k6 against the working directory for writing but by
 * `open()` against the script, so it cannot be checked that way; it is printed instead. A
 * directory that exists but is not writable shows as k6's "could not open" error after the run,
 * with the text summary still on stdout.)
 */
import { BASE_URL_SHOWN } from "./config.js";
import { textSummary } from "./text-summary.js";

const DIR = String(__ENV.SUMMARY_DIR || ".").replace(/(.)\/+$/, "$1");

/** Checks SUMMARY_DIR in the init context of the first VU (0); throws when it is missing. */
export function checkSummaryDir(dir, openFn) {
  if (dir.charAt(0) !== "/") return "relative";
  try {
    openFn(dir);
  } catch (e) {
    const msg = String(e && e.message ? e.message : e);
    // k6: "open() can't be used with directories"; a missing path: "... no such file or directory".
    if (/used with director/i.test(msg)) return "exists";
    if (/no such file|not exist|cannot find|not a directory/i.test(msg)) {
      throw new Error("SUMMARY_DIR=" + dir + " does not exist, so the summary files could not be written: create it (mkdir -p " + dir + ") or point SUMMARY_DIR elsewhere");
    }
    return "unknown";
  }
  throw new Error("SUMMARY_DIR=" + dir + " is a file, not a directory");
}

// `open` exists only in k6's init context; __VU is 0 there for the first parse, setup and handleSummary.
if (__VU === 0 && typeof globalThis.open === "function") checkSummaryDir(DIR, globalThis.open);

/** The summary files of `scenario` for run `runId`. */
export function summaryFiles(scenario, runId) {
  const base = (DIR === "/" ? "" : DIR) + "/k6-" + scenario + "-" + runId + "-summary";
  return { json: base + ".json", text: base + ".txt" };
}

/** `data` without what must not leave the run. */
export function publicData(data) {
  const copy = {};
  for (const k in data) if (k !== "setup_data") copy[k] = data[k];
  return copy;
}

/**
 * A handleSummary for `scenario`. `extraLines(data, setupData)` may add lines after k6's summary
 * (what the run offered, computed from the setup data and the metrics).
 */
export function makeHandleSummary(scenario, extraLines) {
  return function handleSummary(data) {
    const setup = data.setup_data || {};
    const runId = typeof setup.runId === "string" ? setup.runId : __ENV.RUN_ID || "nosetup-" + Date.now();
    const files = summaryFiles(scenario, runId);
    const pub = publicData(data);
    const tty = !!(data.state && data.state.isStdOutTTY) && !(data.options && data.options.noColor);
    const tail = ["", " " + scenario + " against " + BASE_URL_SHOWN + ", run " + runId];
    if (extraLines) for (const l of extraLines(data, setup)) tail.push(" " + l);
    tail.push(" summary: " + files.text + " and " + files.json + (DIR.charAt(0) === "/" ? "" : " (SUMMARY_DIR is relative to the working directory)"));
    const out = {};
    out.stdout = textSummary(pub, { indent: " ", enableColors: tty }) + tail.join("\n") + "\n";
    out[files.text] = textSummary(pub, { indent: " ", enableColors: false }) + tail.join("\n") + "\n";
    out[files.json] = JSON.stringify(pub, null, 1);
    return out;
  };
}

/** "N messages in D s: R/s" for counter `name` over the window the scenario offered load in. */
export function offeredLine(data, name, windowS, what) {
  const m = data.metrics[name];
  const count = m ? m.values.count : 0;
  return what + ": " + count + " in the " + windowS + " s window = " + Math.round((count / windowS) * 100) / 100 + "/s (k6's own /s divides by the whole run, ramp and drain included)";
}
