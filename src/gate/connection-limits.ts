import type { LimitBreach } from "../checks/types.ts";
import { formatIP, formatPrefix, type IP, networkOf } from "../ip/address.ts";

export interface ConnectionLimitsConfig {
  readonly perClient: number;
  /** Per /24 (IPv4) or /64 (IPv6): one host rotating addresses in its network counts once. */
  readonly perPrefix: number;
  readonly total: number;
}

/**
 * Open connections per client address, per network prefix and in total (postscreen's
 * client_connection_count_limit and pre_queue_limit), counted by the accept loop.
 */
export class ConnectionLimits {
  /** IPv4 clients and /24s by number (no string per connection); IPv6 ones by their text. */
  private readonly counts = new Map<string | number, number>();
  private total = 0;

  constructor(private readonly config: ConnectionLimitsConfig) {}

  /** Counts the connection in, or names the limit it breaks (and counts nothing). */
  admit(ip: IP): LimitBreach | undefined {
    const [client, prefix] = keys(ip);
    const clientCount = (this.counts.get(client) ?? 0) + 1;
    const prefixCount = (this.counts.get(prefix) ?? 0) + 1;
    if (this.total + 1 > this.config.total) return { limit: "total", key: "all", count: this.total + 1 };
    if (clientCount > this.config.perClient) return { limit: "client", key: formatIP(ip), count: clientCount };
    if (prefixCount > this.config.perPrefix) return { limit: "prefix", key: formatPrefix(networkOf(ip)), count: prefixCount };
    this.counts.set(client, clientCount);
    this.counts.set(prefix, prefixCount);
    this.total++;
    return undefined;
  }

  /** A connection that `admit` let in has ended. */
  release(ip: IP): void {
    for (const key of keys(ip)) {
      const count = (this.counts.get(key) ?? 1) - 1;
      if (count <= 0) this.counts.delete(key);
      else this.counts.set(key, count);
    }
    this.total--;
  }

  get open(): number {
    return this.total;
  }
}

/** IPv4 /24s are counted under 2^32 + their network number, apart from the addresses. */
const V4_PREFIX_KEYS = 2 ** 32;

function keys(ip: IP): [string | number, string | number] {
  if (ip.family === 4) return [ip.value, V4_PREFIX_KEYS + ((ip.value & 0xffffff00) >>> 0)];
  return [formatIP(ip), formatPrefix(networkOf(ip))];
}
