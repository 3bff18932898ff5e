import type { Logger } from "../log/logger.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { HarvestChange } from "./harvest-watch.ts";

/** A domain entering or leaving the harvest state: one log line and the metric, for the operator's alerting. */
export function reportHarvest(logger: Logger, metrics: Metrics, threshold: number): (change: HarvestChange) => void {
  return (change) => {
    metrics.inc("mxscreen_harvest_changes_total", { state: change.state });
    if (change.state === "enter") {
      logger.note("warn", "recipient domain under harvest across the fleet: clients not yet passed are greylisted for it", {
        domain: change.domain,
        bad_recipients: change.count,
        threshold,
      });
    } else {
      logger.note("info", "harvest over: recipient domain no longer greylisted for new clients", {
        domain: change.domain,
        bad_recipients: change.count,
        duration_ms: Date.now() - change.since,
      });
    }
  };
}
