import type { GreylistStore } from "../greylist/index.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { FleetCounters } from "../store/fleet-counters.ts";

/**
 * What a node holds in memory of the fleet's shared state beside the lists (whose entries
 * process-metrics shows): the counters summed across nodes and the greylist triplets, with
 * what their caps made it forget, and how fresh the fleet's sums are.
 */
export function registerFleetMetrics(metrics: Metrics, counters: FleetCounters, greylist: GreylistStore | undefined): void {
  metrics.gauge(
    "mxscreen_fleet_count_keys",
    "Keys (networks, domains) each fleet-wide counter holds in this node's memory, by counter.",
    () => counters.describe().map(({ name, keys }) => [{ counter: name }, keys] as const),
  );
  metrics.gauge(
    "mxscreen_fleet_count_window_seconds",
    "The window each fleet-wide counter sums over, by counter.",
    () => counters.describe().map(({ name, windowMs }) => [{ counter: name }, windowMs / 1000] as const),
  );
  metrics.counter(
    "mxscreen_fleet_count_evicted_total",
    "Keys a fleet-wide counter forgot because it held 100,000 at once (the least recently counted go first), by counter.",
    () => counters.describe().map(({ name, evicted }) => [{ counter: name }, evicted] as const),
  );
  metrics.gauge(
    "mxscreen_fleet_counts_sync_age_seconds",
    "Seconds since this node last handed its counts to the store's queue and read the other nodes' (every MXSCREEN_COUNTERS_INTERVAL while the database answers): how far behind the fleet's sums may be.",
    () => counters.lastExchange === 0 ? [] : (Date.now() - counters.lastExchange) / 1000,
  );
  if (greylist === undefined) return;
  metrics.gauge(
    "mxscreen_greylist_triplets",
    "Greylist triplets held in this node's memory (at most MXSCREEN_GREYLIST_MAX_TRIPLETS).",
    () => greylist.size,
  );
  metrics.counter(
    "mxscreen_greylist_evicted_total",
    "Greylist triplets forgotten in memory because MXSCREEN_GREYLIST_MAX_TRIPLETS were held (the least recently changed first).",
    () => greylist.evicted,
  );
}
