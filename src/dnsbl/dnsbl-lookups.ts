import { zoneVerdict } from "./dnsbl.ts";
import type { DnsblSite } from "./dnsbl-sites.ts";
import { reversedLabels } from "../dns/reverse-name.ts";
import type { DnsAnswer, DnsblAnswer, DnsClient } from "../dns/types.ts";
import type { IP } from "../ip/address.ts";
import type { Logger } from "../log/logger.ts";

/** postscreen_dnsbl_min_ttl / max_ttl: a listing is remembered at least this long, and at most. */
const MIN_TTL_MS = 60_000;
const MAX_TTL_MS = 3_600_000;
/** Bounded memory under a flood of distinct clients: the oldest entries go first. */
const MAX_CACHED = 100_000;
/** One warning per unhealthy zone per this long, not one per client. */
const WARN_EVERY_MS = 600_000;
/** How often each zone is asked about 127.0.0.1, which RFC 5782 says no list may list. */
const PROBE_EVERY_MS = 600_000;
const TEST_ADDRESS: IP = { family: 4, value: 0x7f000001 };

/** The answers that have arrived so far for one client; the rest do not count. */
export interface DnsblPending {
  answers(): DnsblAnswer[];
  /** Every zone has answered (each lookup ends within MXSCREEN_DNS_TIMEOUT, an error counting as an answer). */
  readonly settled: Promise<void>;
}

/**
 * Starts every zone's lookup when a client connects, in parallel with the greet wait, and
 * caches answers per their TTL. Zones that answer with error codes are logged as unhealthy.
 */
export class DnsblLookups {
  private readonly cache = new Map<string, { answer: DnsAnswer; expires: number }>();
  private readonly warned = new Map<string, number>();
  /** Zones that list 127.0.0.1 (a wildcard after a list died, a hijacked domain): none of their answers count. */
  private readonly broken = new Map<string, string>();
  /** The latest answer of each zone was an error code rather than a listing or a no. */
  private readonly failing = new Set<string>();
  private probeTimer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly sites: readonly DnsblSite[], private readonly dns: DnsClient, private readonly logger: Logger) {}

  /** Asks every zone about RFC 5782's test address now and every 10 minutes, until `stop()`. */
  startProbing(): void {
    this.probe();
    this.probeTimer ??= setInterval(() => this.probe(), PROBE_EVERY_MS);
  }

  stop(): void {
    if (this.probeTimer !== undefined) clearInterval(this.probeTimer);
    this.probeTimer = undefined;
  }

  private probe(): void {
    for (const zone of new Set(this.sites.map((site) => site.zone))) {
      void this.dns.query(`${reversedLabels(TEST_ADDRESS)}.${zone}`, "A").then((answer) => {
        // Only a listing counts: an error code here is the per-answer kind of unhealthy, logged when a client meets it.
        const listed = answer.status === "ok" &&
          this.sites.some((site) => site.zone === zone && zoneVerdict(answer, site).kind === "listed");
        if (answer.status === "ok" && listed) {
          const reason = `the zone lists 127.0.0.1 (${answer.records.join(" ")}), which RFC 5782 says no list may list`;
          if (!this.broken.has(zone)) {
            this.logger.note("warn", "DNSBL zone is unhealthy: none of its answers count until it stops; check the zone and MXSCREEN_DNS", {
              zone,
              reason,
            });
          }
          this.broken.set(zone, reason);
        } else if (answer.status === "nxdomain") {
          this.broken.delete(zone);
        }
      });
    }
  }

  start(ip: IP, now: number): DnsblPending {
    const arrived: DnsblAnswer[] = [];
    const asked: Promise<void>[] = [];
    const zones = [...new Set(this.sites.map((site) => site.zone))];
    for (const zone of zones) {
      const broken = this.broken.get(zone);
      if (broken !== undefined) {
        arrived.push({ zone, answer: { status: "error", reason: broken } });
        continue;
      }
      const name = `${reversedLabels(ip)}.${zone}`;
      const cached = this.cache.get(name);
      if (cached !== undefined && cached.expires > now) {
        arrived.push({ zone, answer: cached.answer });
        continue;
      }
      asked.push(
        this.dns.query(name, "A").then((answer) => {
          arrived.push({ zone, answer });
          this.remember(name, answer, Date.now());
          this.watch(zone, answer, Date.now());
        }),
      );
    }
    return { answers: () => [...arrived], settled: Promise.allSettled(asked).then(() => {}) };
  }

  private remember(name: string, answer: DnsAnswer, now: number): void {
    if (answer.status === "error") return;
    const ttlMs = answer.status === "ok" ? answer.ttl * 1000 : MIN_TTL_MS;
    this.cache.delete(name);
    this.cache.set(name, { answer, expires: now + Math.min(MAX_TTL_MS, Math.max(MIN_TTL_MS, ttlMs)) });
    if (this.cache.size > MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
  }

  /** Each zone and whether its answers count now: for the metrics. */
  zoneHealth(): { zone: string; healthy: boolean }[] {
    return [...new Set(this.sites.map((site) => site.zone))].map((zone) => ({
      zone,
      healthy: !this.broken.has(zone) && !this.failing.has(zone),
    }));
  }

  private watch(zone: string, answer: DnsAnswer, now: number): void {
    if (answer.status !== "error") this.failing.delete(zone);
    for (const site of this.sites.filter((s) => s.zone === zone)) {
      const verdict = zoneVerdict(answer, site);
      if (verdict.kind !== "unhealthy") continue;
      this.failing.add(zone);
      if ((this.warned.get(zone) ?? -Infinity) + WARN_EVERY_MS > now) return;
      this.warned.set(zone, now);
      this.logger.note(
        "warn",
        "DNSBL zone is unhealthy: its answers are not counted as listings; check the zone, its quota and MXSCREEN_DNS",
        {
          zone,
          reason: verdict.reason,
        },
      );
      return;
    }
  }
}
