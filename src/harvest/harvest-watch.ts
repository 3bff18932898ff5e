import type { HarvestedDomain } from "../checks/types.ts";
import type { WindowedCounter } from "../store/windowed-counts.ts";

export interface HarvestWatchConfig {
  /** Unknown recipients at one domain, fleet-wide within the window, from which it is under harvest (MXSCREEN_HARVEST_THRESHOLD). */
  readonly threshold: number;
  /** The domains that can be harvested: ours (MXSCREEN_ACCEPT_DOMAINS); empty for any. */
  readonly domains: readonly string[];
}

/** A domain entering or leaving the harvest state, for the log and the metrics. */
export interface HarvestChange {
  readonly state: "enter" | "leave";
  readonly domain: string;
  /** Its fleet-wide count of unknown recipients within the window at the change. */
  readonly count: number;
  /** When it entered (for `leave`: how long it lasted). */
  readonly since: number;
}

/** Domains under harvest at once, at most: a flood of distinct domains cannot grow what each session is handed. */
export const MAX_HARVESTED = 1_000;

/**
 * Which of our recipient domains are under a distributed harvest, from the fleet's count of
 * unknown recipients per domain (the `bad-rcpt-domain` counter): a domain enters when the count
 * within the window reaches the threshold, here or when another node's rows are read, and leaves
 * once it fell below half of it (so a count hovering at the threshold does not flap). Sans-I/O:
 * the time is passed in, and changes go to `onChange`.
 */
export class HarvestWatch {
  private readonly harvested = new Map<string, { since: number; count: number }>();
  private readonly domains: ReadonlySet<string>;

  constructor(
    private readonly config: HarvestWatchConfig,
    private readonly perDomain: WindowedCounter,
    private readonly onChange: (change: HarvestChange) => void,
  ) {
    this.domains = new Set(config.domains);
  }

  get size(): number {
    return this.harvested.size;
  }

  /** The domain's count changed (this node's session, or another node's row): it may enter the harvest state. */
  counted(domain: string, now: number): void {
    if (this.domains.size > 0 && !this.domains.has(domain)) return;
    const count = this.perDomain.sum(domain, now);
    const held = this.harvested.get(domain);
    if (held !== undefined) {
      held.count = count;
      return;
    }
    if (count < this.config.threshold || this.harvested.size >= MAX_HARVESTED) return;
    this.harvested.set(domain, { since: now, count });
    this.onChange({ state: "enter", domain, count, since: now });
  }

  /** Domains whose count aged out of the window leave the harvest state. */
  tick(now: number): void {
    for (const [domain, held] of this.harvested) {
      held.count = this.perDomain.sum(domain, now);
      if (held.count * 2 >= this.config.threshold) continue;
      this.harvested.delete(domain);
      this.onChange({ state: "leave", domain, count: held.count, since: held.since });
    }
  }

  /** The domain's count when it is under harvest. */
  count(domain: string): number | undefined {
    return this.harvested.get(domain)?.count;
  }

  /** Every domain under harvest with its count, for a session about to begin (GateFacts). */
  snapshot(): HarvestedDomain[] {
    return [...this.harvested].map(([domain, held]) => [domain, held.count] as const);
  }
}
