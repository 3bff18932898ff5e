import { ConfigError } from "./config-error.ts";
import { parseInteger } from "./values.ts";

const MAX_WORKERS = 256;

/**
 * MXSCREEN_WORKERS: a number, or `auto` (the default): sessions inline on the main thread on
 * two cores or fewer, one worker per core above that. On two cores the bench measured inline
 * cheapest (bench/README.md: clean sessions, spool, 2026-11-23b: 1.11 against 1.29 ms of CPU
 * per session on Bun, 1.64 against 2.06 ms on Deno, the same throughput): every byte a worker
 * handles crosses a thread on the way, and there is no idle core for the worker to use. Above
 * two, workers keep slow sessions (DNS, the disk, the upstream) off the accept loop's thread.
 * `cpus` is what the runtime says this process may use (navigator.hardwareConcurrency: the CPU
 * affinity mask on Deno and Bun alike).
 */
export function parseWorkers(text: string, cpus: number): number {
  if (text.trim().toLowerCase() === "auto") return cpus <= 2 ? 0 : Math.min(cpus, MAX_WORKERS);
  if (!/^\d+$/.test(text.trim())) {
    throw new ConfigError("MXSCREEN_WORKERS", text, `auto, or a whole number from 0 to ${MAX_WORKERS} (0: sessions on the main thread)`);
  }
  return parseInteger("MXSCREEN_WORKERS", text, 0, MAX_WORKERS);
}
