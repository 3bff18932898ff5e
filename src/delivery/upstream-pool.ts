import type { Extensions } from "../smtp/extensions.ts";
import type { ClientIdentity } from "./upstream-machine.ts";
import { Upstream, type UpstreamConfig } from "./upstream.ts";

/**
 * A connection older than this serves no further session, as Postfix's own client does
 * (smtp_connection_reuse_time_limit = 300s): the upstream's processes take turns, and whatever
 * state a long session gathers there is dropped now and then.
 */
const REUSE_TIME_LIMIT_MS = 300_000;

/**
 * A connection that falls idle while the pool already holds `poolSize` is kept this long before
 * it is closed, rather than closed at once: under a steady load the sessions in flight swing by
 * more than the pool from one moment to the next, and closing a connection only to open another
 * a few milliseconds later cost a connect, the greeting, EHLO and XCLIENT each time (the bench,
 * 50 sessions in flight and a pool of 16: one new connection per three sessions).
 */
const SURPLUS_IDLE_MS = 1_000;

export interface UpstreamPoolConfig extends UpstreamConfig {
  /** Idle connections kept per session runner (MXSCREEN_UPSTREAM_POOL); 0: one connection per session. */
  readonly poolSize: number;
  /** How long a connection may stay idle before we close it (MXSCREEN_UPSTREAM_IDLE_TIMEOUT). */
  readonly idleTimeoutMs: number;
}

interface Idle {
  readonly upstream: Upstream;
  readonly timer: ReturnType<typeof setTimeout>;
}

/**
 * Warm connections to the upstream, one pool per session runner (each worker, or the main
 * thread inline): a relayed session takes one that an earlier session left idle instead of
 * paying for a TCP connect, the greeting, EHLO and XCLIENT, and gives it back when it ends.
 * Only a connection that is idle, outside a transaction and trusted goes back (one that failed,
 * got 421 or answered out of turn never does; the machine knows), `poolSize` of them closed
 * with QUIT after `idleTimeoutMs` (before the upstream's own timeout would), any more than that
 * after `SURPLUS_IDLE_MS`.
 */
export class UpstreamPool {
  private readonly idle: Idle[] = [];
  /** Cleared once the upstream refuses XCLIENT for a second client on one connection. */
  private xclientReuse = true;
  private closed = false;
  private known: Extensions | undefined;
  /** A TLS handshake under `may` failed and was said so; cleared by the next connection inside TLS. */
  private tlsFallbackSaid = false;

  constructor(private readonly config: UpstreamPoolConfig, private readonly warn: (message: string) => void) {}

  /** A connection for one session: the most recently idle one, introduced to `client`, or a new one. */
  take(client: ClientIdentity, congested: (yes: boolean) => void): Upstream {
    const now = Date.now();
    for (let entry = this.idle.pop(); entry !== undefined; entry = this.idle.pop()) {
      clearTimeout(entry.timer);
      if (this.keepable(entry.upstream, now)) {
        entry.upstream.handOver(client, congested);
        return entry.upstream;
      }
      entry.upstream.quit();
    }
    return new Upstream(this.config, client, congested);
  }

  /**
   * The upstream's extensions as its last EHLO reply said (on any connection of this pool), for
   * the next sessions to offer; undefined until a connection got that far.
   */
  get extensions(): Extensions | undefined {
    return this.known;
  }

  /** The session is over: its connection waits for the next one, or is closed. */
  release(upstream: Upstream): void {
    this.known = upstream.extensions ?? this.known;
    if (upstream.tls) this.tlsFallbackSaid = false;
    const fallback = upstream.tlsFallback;
    if (fallback !== undefined && !this.tlsFallbackSaid) {
      this.tlsFallbackSaid = true;
      this.warn(
        `${fallback}: relaying in plaintext (MXSCREEN_UPSTREAM_TLS=may; fix the upstream's TLS, or set MXSCREEN_UPSTREAM_TLS=off to stop trying)`,
      );
    }
    if (upstream.refusesSecondXclient && this.xclientReuse) {
      this.xclientReuse = false;
      this.warn(
        `${this.config.host}:${this.config.port} refuses XCLIENT for a second client on one connection: each relayed session now opens its own ` +
          "(Postfix: a listener for mxscreen alone whose smtpd_authorized_xclient_hosts admits every client address, see the README)",
      );
    }
    if (this.closed || this.config.poolSize === 0 || !this.keepable(upstream, Date.now())) return upstream.quit();
    const surplus = this.idle.length >= this.config.poolSize;
    const entry: Idle = {
      upstream,
      timer: setTimeout(() => {
        const at = this.idle.indexOf(entry);
        if (at >= 0) this.idle.splice(at, 1);
        upstream.quit();
      }, surplus ? Math.min(SURPLUS_IDLE_MS, this.config.idleTimeoutMs) : this.config.idleTimeoutMs),
    };
    this.idle.push(entry);
  }

  /** Closes every idle connection (QUIT); connections released later are closed at once. */
  close(): void {
    this.closed = true;
    for (const entry of this.idle.splice(0)) {
      clearTimeout(entry.timer);
      entry.upstream.quit();
    }
  }

  private keepable(upstream: Upstream, now: number): boolean {
    return upstream.reusable && upstream.age(now) < REUSE_TIME_LIMIT_MS && (this.xclientReuse || !upstream.usesXclient);
  }
}
