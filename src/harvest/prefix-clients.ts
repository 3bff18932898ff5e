import { formatIP, formatPrefix, type IP, networkOf, parseIP } from "../ip/address.ts";
import type { WindowedCounter } from "../store/windowed-counts.ts";

/** Addresses held across every network: bounded memory under a flood of distinct clients, the least recently counted networks going first. */
const MAX_ADDRESSES = 100_000;
/** Addresses held per network: past this many it is over any MXSCREEN_HARVEST_PREFIX_CLIENTS, and an IPv6 /64 rotating addresses cannot crowd the others out. */
export const MAX_PER_NETWORK = 1_000;

/**
 * How many distinct addresses of one /24 or /64 tried unknown recipients within the window,
 * fleet-wide: each address's count is the fleet's (the `bad-rcpt-client` counter, one key per
 * address, so an address seen at two nodes counts once), and this index knows which addresses
 * belong to which network, from this node's sessions and the other nodes' rows. Sans-I/O.
 */
export class PrefixClients {
  private readonly networks = new Map<string, Set<string>>();
  private held = 0;

  constructor(private readonly perClient: WindowedCounter, private readonly maxAddresses = MAX_ADDRESSES) {}

  /** A session of this node from `ip` ended with `n` unknown recipients. */
  add(ip: IP, n: number, now: number): void {
    const address = formatIP(ip);
    this.perClient.add(address, n, now);
    this.note(ip, address);
  }

  /** Another node's count for `address` was read. */
  heard(address: string): void {
    const ip = parseIP(address);
    if (ip !== null) this.note(ip, address);
  }

  /** Distinct addresses of `network` (as `formatPrefix` writes it) counted within the window ending at `now`; those aged out are forgotten. */
  distinct(network: string, now: number): number {
    const addresses = this.networks.get(network);
    if (addresses === undefined) return 0;
    for (const address of addresses) {
      if (this.perClient.sum(address, now) > 0) continue;
      addresses.delete(address);
      this.held--;
    }
    if (addresses.size === 0) this.networks.delete(network);
    return addresses.size;
  }

  private note(ip: IP, address: string): void {
    const network = formatPrefix(networkOf(ip));
    const addresses = this.networks.get(network) ?? new Set<string>();
    // Most recently counted last (a Map keeps insertion order), so the oldest go first past the cap.
    this.networks.delete(network);
    this.networks.set(network, addresses);
    if (addresses.has(address) || addresses.size >= MAX_PER_NETWORK) return;
    addresses.add(address);
    this.held++;
    while (this.held > this.maxAddresses) {
      const [oldest, gone] = this.networks.entries().next().value!;
      this.networks.delete(oldest);
      this.held -= gone.size;
    }
  }
}
