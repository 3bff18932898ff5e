import { formatPrefix, type IP, networkOf, type Prefix } from "../ip/address.ts";
import type { WindowedCounter } from "../store/windowed-counts.ts";
import { type HarvestChange, HarvestWatch, type HarvestWatchConfig } from "./harvest-watch.ts";
import { PrefixClients } from "./prefix-clients.ts";

export interface HarvestWindowConfig extends HarvestWatchConfig {
  /** Distinct addresses of one /24 or /64 with unknown recipients within the window that make it a harvesting network (MXSCREEN_HARVEST_PREFIX_CLIENTS). */
  readonly prefixClients: number;
}

/** The fleet's counters a harvest is judged by, over MXSCREEN_BAD_RCPT_WINDOW: unknown recipients per domain, and per client address. */
export interface HarvestCounters {
  readonly perDomain: WindowedCounter;
  readonly perClient: WindowedCounter;
}

/** A session that tried unknown recipients at a domain under harvest. */
export interface HarvestTry {
  /** The domain under harvest it tried most, with the fleet's count for it. */
  readonly domain: string;
  readonly count: number;
  readonly network: Prefix;
  /** Distinct addresses of its network with unknown recipients within the window, fleet-wide, its own included. */
  readonly clients: number;
  /** `clients` reached MXSCREEN_HARVEST_PREFIX_CLIENTS: the network harvests, not one mistyping sender. */
  readonly over: boolean;
}

/**
 * A distributed harvest across connections and nodes: which domains are under harvest
 * (HarvestWatch), and which networks take part, by how many of their addresses tried unknown
 * recipients. Sans-I/O: the time is passed in, the counters answer from memory.
 */
export class HarvestWindow {
  private readonly watch: HarvestWatch;
  private readonly clients: PrefixClients;

  constructor(private readonly config: HarvestWindowConfig, counters: HarvestCounters, onChange: (change: HarvestChange) => void) {
    this.watch = new HarvestWatch(config, counters.perDomain, onChange);
    this.clients = new PrefixClients(counters.perClient);
  }

  /** Another node's count for a domain was read: it may put the domain under harvest. */
  heardDomain(domain: string, now: number): void {
    this.watch.counted(domain, now);
  }

  /** Another node's count for a client address was read. */
  heardClient(address: string): void {
    this.clients.heard(address);
  }

  /** Domains under harvest leave that state once their count aged out of the window. */
  tick(now: number): void {
    this.watch.tick(now);
  }

  /** The domains under harvest, for a session about to begin. */
  snapshot(): ReturnType<HarvestWatch["snapshot"]> {
    return this.watch.snapshot();
  }

  get harvested(): number {
    return this.watch.size;
  }

  /**
   * A session of this node ended with `badRecipients` unknown recipients, per domain in
   * `domains`, already added to the per-domain counter (BadRecipientWindow). Its address is
   * counted; when one of those domains is under harvest, what that says about its network.
   */
  sessionEnded(ip: IP, badRecipients: number, domains: readonly (readonly [string, number])[], now: number): HarvestTry | undefined {
    this.clients.add(ip, badRecipients, now);
    let tried: { domain: string; count: number } | undefined;
    for (const [domain] of domains) {
      this.watch.counted(domain, now);
      const count = this.watch.count(domain);
      if (count !== undefined && (tried === undefined || count > tried.count)) tried = { domain, count };
    }
    if (tried === undefined) return undefined;
    const network = networkOf(ip);
    const clients = this.clients.distinct(formatPrefix(network), now);
    return { ...tried, network, clients, over: clients >= this.config.prefixClients };
  }
}
