import type { Metrics } from "../metrics/metrics.ts";

/**
 * How many sessions may be tarpitted at once (MXSCREEN_TARPIT_SHARE of MXSCREEN_MAX_CONNECTIONS):
 * a slowed session holds a connection longer, and a tarpit must not fill the server it protects
 * (OpenBSD spamd backs off near its connection limit). A session holds its place from its first
 * slowed reply until it ends; under stress no reply is slowed and places are given up.
 */
export class TarpitBudget {
  private readonly holders = new Set<object>();

  constructor(private readonly sessions: number, private readonly stressed: () => boolean, private readonly metrics: Metrics) {
    metrics.gauge("mxscreen_tarpit_sessions", "Sessions holding a place in the tarpit now.", () => this.holders.size);
  }

  /** How much of `ms` the session `holder` may be made to wait before a reply's final line: all of it, or none. */
  grant(holder: object, ms: number): number {
    if (ms === 0) return 0;
    if (this.stressed()) {
      this.holders.delete(holder);
      this.metrics.inc("mxscreen_tarpit_skipped_total", { reason: "stress" });
      return 0;
    }
    if (!this.holders.has(holder)) {
      if (this.holders.size >= this.sessions) {
        this.metrics.inc("mxscreen_tarpit_skipped_total", { reason: "budget" });
        return 0;
      }
      this.holders.add(holder);
      this.metrics.inc("mxscreen_tarpit_sessions_total");
    }
    this.metrics.inc("mxscreen_tarpit_delay_seconds_total", {}, ms / 1000);
    return ms;
  }

  /** The session ended. */
  release(holder: object): void {
    this.holders.delete(holder);
  }
}
