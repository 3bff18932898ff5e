/** Harvest defence: the check, and the fleet-wide state of domains under harvest and of the networks that take part. */
export { harvest } from "./harvest.ts";
export { type HarvestCounters, type HarvestTry, HarvestWindow, type HarvestWindowConfig } from "./harvest-window.ts";
export type { HarvestChange } from "./harvest-watch.ts";
export { reportHarvest } from "./harvest-report.ts";
