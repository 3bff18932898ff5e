import { formatIP, type IP } from "../ip/address.ts";
import type { ListEntry } from "../store/types.ts";

/** Bounded memory under a flood of distinct passed clients: the least recently renewed go first (and are merely looked up again). */
const MAX_KEPT = 100_000;

/**
 * When this node last found each passed client clean in the DNSBLs, by address: the DNSBL
 * test's own expiry (postscreen_dnsbl_ttl), apart from the greet test's. A client this node has
 * not looked up since it passed dates its verdict from its pass (its lookups ran during the greet
 * wait it passed). Per node, as postscreen's cache is per host: each node asks once per TTL.
 */
export class DnsblVerdicts {
  private readonly cleanAt = new Map<string, number>();

  constructor(private readonly ttlMs: number, private readonly maxKept = MAX_KEPT) {}

  /** The client's DNSBL verdict is older than the TTL: look it up again before its session. */
  due(ip: IP, pass: ListEntry, now: number): boolean {
    return (this.cleanAt.get(formatIP(ip)) ?? pass.createdAt) + this.ttlMs <= now;
  }

  /** Looked up again and its session passed: its verdict holds for another TTL. */
  renewed(ip: IP, now: number): void {
    const key = formatIP(ip);
    this.cleanAt.delete(key);
    this.cleanAt.set(key, now);
    if (this.cleanAt.size > this.maxKept) this.cleanAt.delete(this.cleanAt.keys().next().value!);
  }
}
