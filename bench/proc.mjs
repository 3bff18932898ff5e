// Server CPU and memory from /proc, over a whole process tree (a root PID and every live
// descendant): CPU = utime + stime + cutime + cstime of each (cutime/cstime carry the CPU of
// children already reaped, such as Postfix's smtpd processes that exited), memory = the sum of
// Pss from /proc/PID/smaps_rollup (forked processes' shared pages are split between them, not
// counted twice).
import { readdirSync, readFileSync } from "node:fs";

const TICK_MS = 10; // USER_HZ is 100 on Linux

function stat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state): ppid is field 4, utime..cstime fields 14..17.
    return { ppid: Number(fields[1]), cpuTicks: Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]) };
  } catch {
    return null;
  }
}

/** The root and its live descendants. */
export function tree(root) {
  const children = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(name);
    if (!s) continue;
    const pid = Number(name);
    if (!children.has(s.ppid)) children.set(s.ppid, []);
    children.get(s.ppid).push(pid);
  }
  const out = [];
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop();
    out.push(pid);
    for (const c of children.get(pid) ?? []) stack.push(c);
  }
  return out;
}

/** CPU milliseconds used so far by the tree (live processes plus the reaped children they waited for). */
export function cpuMs(roots) {
  let ticks = 0;
  for (const root of roots) for (const pid of tree(root)) ticks += stat(pid)?.cpuTicks ?? 0;
  return ticks * TICK_MS;
}

/** Proportional set size of the tree, in KiB. */
export function pssKiB(roots) {
  let kib = 0;
  for (const root of roots) {
    for (const pid of tree(root)) {
      try {
        const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
        if (m) kib += Number(m[1]);
      } catch {
        // gone meanwhile
      }
    }
  }
  return kib;
}

export function processCount(roots) {
  let n = 0;
  for (const root of roots) n += tree(root).length;
  return n;
}

function ownStat(path) {
  try {
    const text = readFileSync(`${path}/stat`, "utf8");
    const name = text.slice(text.indexOf("(") + 1, text.lastIndexOf(")"));
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { name, ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return null;
  }
}

/** `/proc/PID`, or with `threads` each `/proc/PID/task/TID`, named `process:thread` (Bun's JITWorker, V8's compiler threads). */
function counted(pid, threads) {
  if (!threads) return [{ key: String(pid), path: `/proc/${pid}`, prefix: "" }];
  let tids;
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const process = ownStat(`/proc/${pid}`)?.name ?? "?";
  return tids.map((tid) => ({ key: `${pid}/${tid}`, path: `/proc/${pid}/task/${tid}`, prefix: `${process}:` }));
}

/**
 * CPU per process name (smtpd, cleanup, qmgr, …) over a tree, or with `threads` per process and
 * thread name, sampled every `everyMs` while it runs: a process or thread that exits is counted
 * up to its last sample, and what it used after that (its parent's cutime only knows the sum) is
 * the `(exited, after the last sample)` entry. Call stop() for { name → ms } since start.
 */
export function cpuByName(roots, { threads = false, everyMs = 100 } = {}) {
  const first = new Map(); // pid or pid/tid → ticks when first seen (0 for one born meanwhile)
  const last = new Map(); // pid or pid/tid → { name, ticks }
  const total0 = cpuMs(roots);
  const sample = (initial) => {
    for (const root of roots) {
      for (const pid of tree(root)) {
        for (const { key, path, prefix } of counted(pid, threads)) {
          const s = ownStat(path);
          if (!s) continue;
          if (!first.has(key)) first.set(key, initial ? s.ticks : 0);
          last.set(key, { name: prefix + s.name, ticks: s.ticks });
        }
      }
    }
  };
  sample(true);
  const timer = setInterval(() => sample(false), everyMs);
  return {
    stop() {
      clearInterval(timer);
      sample(false);
      const byName = {};
      let attributed = 0;
      for (const [key, s] of last) {
        const ms = (s.ticks - first.get(key)) * TICK_MS;
        byName[s.name] = (byName[s.name] ?? 0) + ms;
        attributed += ms;
      }
      byName["(exited, after the last sample)"] = cpuMs(roots) - total0 - attributed;
      return byName;
    },
  };
}
