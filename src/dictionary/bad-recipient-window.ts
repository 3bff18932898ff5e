import { formatPrefix, type IP, networkOf } from "../ip/address.ts";
import type { WindowedCounter } from "../store/windowed-counts.ts";

export interface BadRecipientWindowConfig {
  /** More than this many unknown recipients from one /24 or /64 within `windowMs` is a dictionary attack. */
  readonly max: number;
  readonly windowMs: number;
}

/** How many unknown recipients a client's network has tried within the window, fleet-wide, and whether that is too many. */
export interface WindowCount {
  readonly prefix: string;
  readonly count: number;
  readonly over: boolean;
  /** The recipient domain of this session most tried fleet-wide within the window, and its count. */
  readonly domain?: { readonly name: string; readonly count: number };
}

/** The counters a fleet shares for unknown recipients (src/store/fleet-counters.ts), each over the window. */
export interface BadRecipientCounters {
  readonly perPrefix: WindowedCounter;
  readonly perDomain: WindowedCounter;
}

/**
 * Unknown recipients counted across connections per /24 (IPv4) or /64 (IPv6), and per
 * recipient domain, over a window shared by every node of the fleet (a distributed dictionary
 * attack tries a few names per connection, from many connections, at every MX).
 * Sans-I/O: the time is passed in, and the counters answer from memory.
 */
export class BadRecipientWindow {
  constructor(private readonly config: BadRecipientWindowConfig, private readonly counters: BadRecipientCounters) {}

  add(ip: IP, badRecipients: number, domains: readonly (readonly [string, number])[], now: number): WindowCount {
    const prefix = formatPrefix(networkOf(ip));
    const count = this.counters.perPrefix.add(prefix, badRecipients, now);
    let domain: WindowCount["domain"];
    for (const [name, n] of domains) {
      const total = this.counters.perDomain.add(name, n, now);
      if (domain === undefined || total > domain.count) domain = { name, count: total };
    }
    return { prefix, count, over: count > this.config.max, ...(domain && { domain }) };
  }
}
