import type { RateCounts, SessionRates } from "../checks/types.ts";
import type { ChecksSettings } from "../checks/registry.ts";
import { formatIP, formatPrefix, type IP, networkOf } from "../ip/address.ts";
import type { SessionFacts } from "../smtp/types.ts";
import type { WindowedCounter } from "../store/windowed-counts.ts";

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;

/** A fleet-wide counter by its stable name (src/store/fleet-counters.ts), over its window. */
export type CounterSource = (name: string, windowMs: number) => WindowedCounter;

type RateSettings = Pick<
  ChecksSettings,
  "maxConnRate" | "maxConnRatePrefix" | "maxMsgRate" | "maxMsgRatePrefix" | "maxRcptRate" | "maxRcptRatePrefix"
>;

/** One rate's two counters, the address's and its network's; a limit of 0 counts nothing (rows cost the database). */
class Rate {
  private readonly perClient: WindowedCounter | undefined;
  private readonly perPrefix: WindowedCounter | undefined;

  constructor(counters: CounterSource, name: string, windowMs: number, maxClient: number, maxPrefix: number) {
    this.perClient = maxClient > 0 ? counters(`${name}-client`, windowMs) : undefined;
    this.perPrefix = maxPrefix > 0 ? counters(`${name}-prefix`, windowMs) : undefined;
  }

  get counting(): boolean {
    return this.perClient !== undefined || this.perPrefix !== undefined;
  }

  add(ip: IP, n: number, now: number): RateCounts {
    const prefixKey = formatPrefix(networkOf(ip));
    return { client: this.perClient?.add(formatIP(ip), n, now) ?? 0, prefix: this.perPrefix?.add(prefixKey, n, now) ?? 0, prefixKey };
  }

  sum(ip: IP, now: number): RateCounts {
    const prefixKey = formatPrefix(networkOf(ip));
    return { client: this.perClient?.sum(formatIP(ip), now) ?? 0, prefix: this.perPrefix?.sum(prefixKey, now) ?? 0, prefixKey };
  }
}

/**
 * Connection (per minute), message and recipient (per hour) rates per client address and per
 * /24 or /64, summed over the fleet through the fleet-wide counters: each node counts its own in
 * memory and reads the others' every MXSCREEN_COUNTERS_INTERVAL, so nothing waits on the
 * network. A session is judged against the fleet's counts as they stood when it began plus its
 * own; its own join the fleet's when it ends.
 */
export class ClientRates {
  private readonly connections: Rate;
  private readonly messages: Rate;
  private readonly recipients: Rate;

  constructor(settings: RateSettings, counters: CounterSource) {
    this.connections = new Rate(counters, "conn-rate", MINUTE_MS, settings.maxConnRate, settings.maxConnRatePrefix);
    this.messages = new Rate(counters, "msg-rate", HOUR_MS, settings.maxMsgRate, settings.maxMsgRatePrefix);
    this.recipients = new Rate(counters, "rcpt-rate", HOUR_MS, settings.maxRcptRate, settings.maxRcptRatePrefix);
  }

  /** Counts a new connection in; the fleet's counts with it, or undefined when the rate is off. */
  connection(ip: IP, now: number): RateCounts | undefined {
    return this.connections.counting ? this.connections.add(ip, 1, now) : undefined;
  }

  /** What a session from `ip` starts from; undefined when neither rate is on. */
  session(ip: IP, now: number): SessionRates | undefined {
    if (!this.messages.counting && !this.recipients.counting) return undefined;
    return { messages: this.messages.sum(ip, now), recipients: this.recipients.sum(ip, now) };
  }

  /** A session ended: its accepted MAIL transactions and recipients join the fleet's counts. */
  ended(ip: IP, facts: SessionFacts, now: number): void {
    if (this.messages.counting && facts.transactions > 0) this.messages.add(ip, facts.transactions, now);
    if (this.recipients.counting && facts.recipients > 0) this.recipients.add(ip, facts.recipients, now);
  }
}
