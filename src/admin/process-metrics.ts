import { execFile } from "node:child_process";
import { readdirSync } from "node:fs";
import process from "node:process";
import { setInterval } from "node:timers";
import { openFilesLimit } from "../net/open-files.ts";
import { runtimeName } from "../net/runtime/which-runtime.ts";
import type { Store } from "../store/store.ts";
import { VERSION } from "../version.ts";
import type { Metrics } from "../metrics/metrics.ts";

const SAMPLE_MS = 5_000;
const LAG_TICK_MS = 500;

/**
 * Open descriptors of this process. Deno refuses /proc/self without --allow-all, so when the
 * directory cannot be read a shell counts them from outside (its own pipes are not ours: the
 * shell's /proc/$PPID is this process); undefined while neither answers.
 */
function countOpenFds(done: (count: number | undefined) => void): void {
  try {
    done(readdirSync("/proc/self/fd").length);
    return;
  } catch {
    // Counted from outside below.
  }
  execFile("/bin/sh", ["-c", "ls /proc/$PPID/fd | wc -l"], { timeout: 2_000 }, (error, stdout) => {
    const count = Number(String(stdout).trim());
    done(error || !Number.isInteger(count) ? undefined : count);
  });
}

/**
 * The process's own health, as Prometheus' client libraries name it (process_*), and the
 * facts an alert needs beside the screen's counters: what this build is, how close the process
 * is to its file limit, how late its event loop runs, how many list entries it holds in memory.
 * Sampling runs on unref'd timers, so it never keeps a stopping process alive.
 */
export function registerProcessMetrics(metrics: Metrics, store: Store, maxConnections: number | undefined): void {
  const maxFds = openFilesLimit();
  let openFds: number | undefined;
  let lagSeconds = 0;
  let expected = Date.now() + LAG_TICK_MS;
  const sample = () => countOpenFds((count) => openFds = count);
  sample();
  setInterval(sample, SAMPLE_MS).unref();
  setInterval(() => {
    const now = Date.now();
    lagSeconds = Math.max(0, now - expected) / 1000;
    expected = now + LAG_TICK_MS;
  }, LAG_TICK_MS).unref();

  metrics.gauge(
    "mxscreen_build_info",
    "Always 1: the version and the runtime of this process, as labels.",
    () => [[{ version: VERSION, runtime: runtimeName() }, 1]],
  );
  metrics.gauge(
    "process_open_fds",
    "Open file descriptors (sampled every 5 s): every held client is one.",
    () => openFds === undefined ? [] : [[{}, openFds]],
  );
  if (maxFds !== undefined) metrics.gauge("process_max_fds", "The open-files limit (RLIMIT_NOFILE soft limit).", () => maxFds);
  metrics.gauge("process_resident_memory_bytes", "Resident set size.", () => process.memoryUsage.rss());
  metrics.gauge(
    "mxscreen_event_loop_lag_seconds",
    "How late the last 500 ms timer of the main thread fired: time the accept loop could not answer.",
    () => lagSeconds,
  );
  metrics.gauge(
    "mxscreen_list_entries",
    "Entries in force in this node's memory, by list (ban, pass, allow).",
    () => (["ban", "pass", "allow"] as const).map((list) => [{ list }, store.inForce(list)] as const),
  );
  metrics.gauge(
    "mxscreen_store_table_rows",
    "Rows per table of the shared database, as the node doing the housekeeping counted them last (every 5 minutes).",
    () => Object.entries(store.tableRows()).map(([table, rows]) => [{ table }, rows] as const),
  );
  if (maxConnections !== undefined) {
    metrics.gauge("mxscreen_max_connections", "MXSCREEN_MAX_CONNECTIONS: past it new clients get 421 4.3.2.", () => maxConnections);
  }
}
