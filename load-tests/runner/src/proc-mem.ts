import fs from "node:fs";

/** Resident set size of a process in bytes, from /proc/<pid>/status (Linux); undefined if unreadable. */
export function rssOf(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m?.[1] ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Summed RSS of several processes; undefined if any is unreadable. */
export function rssOfAll(pids: readonly number[]): number | undefined {
  let total = 0;
  for (const pid of pids) {
    const r = rssOf(pid);
    if (r === undefined) return undefined;
    total += r;
  }
  return total;
}

/** CPU time (user + system) a process has used, in seconds, from /proc/<pid>/stat; undefined if unreadable. */
export function cpuSecondsOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th overall.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(rest[11]) + Number(rest[12])) / 100;
  } catch {
    return undefined;
  }
}

/** Summed CPU seconds of several processes. */
export function cpuSecondsOfAll(pids: readonly number[]): number | undefined {
  let total = 0;
  for (const pid of pids) {
    const c = cpuSecondsOf(pid);
    if (c === undefined) return undefined;
    total += c;
  }
  return total;
}
