import { formatPrefix, type IP, mask } from "../ip/address.ts";

export interface BadRecipientWindowConfig {
  /** More than this many unknown recipients from one /24 or /64 within `windowMs` is a dictionary attack. */
  readonly max: number;
  readonly windowMs: number;
}

/** How many unknown recipients a client's network has tried within the window, and whether that is too many. */
export interface WindowCount {
  readonly prefix: string;
  readonly count: number;
  readonly over: boolean;
}

/** Bounded memory under a flood of distinct networks: the oldest go first. */
const MAX_PREFIXES = 100_000;

/**
 * Unknown recipients counted across connections per /24 (IPv4) or /64 (IPv6), in a sliding
 * window (a distributed dictionary attack tries a few names per connection, from many
 * connections). Sans-I/O: the time is passed in.
 */
export class BadRecipientWindow {
  private readonly seen = new Map<string, { at: number; count: number }[]>();

  constructor(private readonly config: BadRecipientWindowConfig) {}

  add(ip: IP, badRecipients: number, now: number): WindowCount {
    const length = ip.family === 4 ? 24 : 64;
    const prefix = formatPrefix({ ip: mask(ip, length), length });
    const recent = (this.seen.get(prefix) ?? []).filter((entry) => entry.at > now - this.config.windowMs);
    recent.push({ at: now, count: badRecipients });
    this.seen.delete(prefix);
    this.seen.set(prefix, recent);
    if (this.seen.size > MAX_PREFIXES) this.seen.delete(this.seen.keys().next().value!);
    const count = recent.reduce((sum, entry) => sum + entry.count, 0);
    return { prefix, count, over: count > this.config.max };
  }
}
