import { clientPrefix, type IP } from "../ip/address.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { Logger } from "../log/logger.ts";
import type { CheckFinding } from "../checks/types.ts";
import type { SessionFacts } from "../smtp/types.ts";
import type { Store } from "../store/store.ts";
import type { Finding } from "./types.ts";
import type { Standing } from "../store/types.ts";

export interface ConcludeConfig {
  readonly banTtlMs: number;
  readonly passTtlMs: number;
  /** MXSCREEN_PROTOCOL_PASS_TTL: a pass lasts as long as the longer of this and the greet test's. */
  readonly protocolPassTtlMs: number;
  readonly ipv6PrefixLength: number;
}

export interface ConnectionRecord {
  readonly ip: IP;
  readonly address: string;
  readonly port: number;
  readonly openedAt: number;
  /** The address and port the client connected to (at the proxy, when a PROXY header named it). */
  readonly local: { readonly address: string; readonly port: number };
  /** The trusted proxy that named this client in a PROXY header. */
  readonly via?: string;
}

/** `192.0.2.1:4321` or `[2001:db8::1]:4321`, as the log shows a client. */
export function clientLabel(connection: ConnectionRecord): string {
  return connection.ip.family === 6 ? `[${connection.address}]:${connection.port}` : `${connection.address}:${connection.port}`;
}

/** The address the client connected to, in the same form, for postscreen's `CONNECT from … to …`. */
function localLabel(connection: ConnectionRecord): string {
  return connection.local.address.includes(":")
    ? `[${connection.local.address}]:${connection.local.port}`
    : `${connection.local.address}:${connection.local.port}`;
}

/**
 * The findings for a connection that reached an SMTP session, from how that session ended:
 * the one its log line is about first (a ban before an enforcement before a logged hit), then
 * every other check hit, each stored as an event row of its own.
 */
export function sessionFindings(standing: Standing, gateFindings: readonly Finding[], facts: SessionFacts): Finding[] {
  const evidence = {
    helo: facts.helo,
    commands: facts.commands,
    after: facts.where,
    messages: facts.messages,
    recipients: facts.recipients,
    tempfails: facts.tempfails || undefined,
    errors: facts.errors,
    paced: facts.pacedReplies || undefined,
    tls: facts.tls || undefined,
    injected_bytes: facts.injectedBytes || undefined,
    end: facts.end,
    dnsbl_score: facts.dnsblScore,
    helo_dns: facts.heloDns,
    fcrdns: facts.fcrdns,
  };
  const asFinding = (hit: CheckFinding): Finding => ({ event: hit.tag, check: hit.check, action: hit.action, evidence: hit.evidence });
  // A fact that is only recorded (PTR), or a hit that only sent a recipient to greylisting (whose
  // own finding, when it deferred, is the verdict), is kept as an event row but does not make one.
  const isNote = (hit: CheckFinding) => (hit.consequence === "record" && hit.action === "ignore") || hit.consequence === "greylist";
  const notes = facts.findings.filter(isNote).map(asFinding);
  const hits = facts.findings.filter((hit) => !isNote(hit)).map(asFinding);
  // A session ended by a ban made meanwhile (`close`: no check's action is) is logged as that, before any hit but a ban.
  const rank = (finding: Finding) => ["ban", "close", "enforce"].indexOf(finding.action) >>> 0;
  const ranked = [...gateFindings, ...hits].sort((a, b) => rank(a) - rank(b));
  const verdict = (first: Finding, others: Finding[] = notes): Finding[] => {
    const also = others.length > 0 ? { also: others.map((other) => other.event).join(",") } : {};
    return [{ ...first, evidence: { ...first.evidence, ...also } }, ...others];
  };
  if (ranked.length > 0) {
    const [first, ...others] = [...ranked, ...notes];
    return verdict({ ...first, evidence: { ...first.evidence, ...evidence } }, others);
  }
  if (facts.end === "timeout") return verdict({ event: "TIMEOUT", check: "timeout", action: "close", evidence });
  if (facts.end === "errors") return verdict({ event: "ERROR-LIMIT", check: "error-limit", action: "close", evidence });
  // A client that cannot finish the handshake it asked for has not shown it is a working MTA.
  if (facts.end === "tls-failed") return verdict({ event: "TLS-FAILED", check: "tls-failed", action: "close", evidence });
  if (facts.end === "shutdown") return verdict({ event: "SHUTDOWN", check: "none", action: "close", evidence });
  if (standing.kind === "allowed") {
    return verdict({ event: "ALLOWED", check: "allow", action: "pass", evidence: { ...evidence, allow: standing.source } });
  }
  if (standing.kind === "passed") return verdict({ event: "PASS OLD", check: "none", action: "pass", evidence });
  return verdict({ event: "PASS NEW", check: "none", action: "pass", evidence });
}

/**
 * The one place where every connection ends (postscreen's psc_conclude): one log line, and
 * what the verdict means for the shared lists and the event history that explain reads.
 */
export class Concluder {
  constructor(
    private readonly config: ConcludeConfig,
    private readonly logger: Logger,
    private readonly store: Store,
    private readonly metrics: Metrics,
  ) {}

  /** A pass stands for the greet test and the deep protocol tests, each with its own TTL from its creation (src/store/standing.ts). */
  private get passLifetime(): number {
    return Math.max(this.config.passTtlMs, this.config.protocolPassTtlMs);
  }

  /**
   * A new client waited out the greeting: on the pass list at once, so that the next connections
   * of a sender pool, opened seconds later, are greeted at once. `conclude` takes it back if its
   * session then fails a check.
   */
  admit(connection: ConnectionRecord, now: number): void {
    this.store.set("pass", {
      prefix: clientPrefix(connection.ip, this.config.ipv6PrefixLength),
      ttlMs: this.passLifetime,
      check: "pregreet",
      reason: "passed",
    }, now);
  }

  /**
   * `also`: further findings about the same connection, stored as event rows but not logged again.
   * `admitted`: `admit` put it on the pass list when its session began.
   */
  conclude(connection: ConnectionRecord, finding: Finding, now: number, also: readonly Finding[] = [], admitted = false): void {
    this.logger.log({
      event: finding.event,
      client: clientLabel(connection),
      local: localLabel(connection),
      ...finding.evidence,
      duration_ms: now - connection.openedAt,
      via: connection.via,
      action: finding.action,
    });
    const letThrough = finding.action === "ignore" || finding.action === "observe";
    this.metrics.verdict(finding.event.toLowerCase().replace(/ /g, "-"), (now - connection.openedAt) / 1000, now, letThrough);
    if (finding.check !== "none") this.metrics.inc("mxscreen_check_hits_total", { check: finding.check, action: finding.action });
    const prefix = clientPrefix(connection.ip, this.config.ipv6PrefixLength);
    this.store.together(() => {
      if (finding.action === "ban") {
        this.store.set("ban", {
          prefix: finding.banPrefix ?? prefix,
          ttlMs: this.config.banTtlMs,
          check: finding.check,
          reason: finding.event,
          evidence: finding.evidence,
        }, now);
      }
      if (finding.event === "PASS NEW" && !admitted) {
        this.store.set("pass", { prefix, ttlMs: this.passLifetime, check: "pregreet", reason: "passed" }, now);
      } else if (finding.event !== "PASS NEW" && (admitted || [finding, ...also].some((found) => found.takesPass))) {
        this.store.remove("pass", prefix, now, `session ended ${finding.event}`);
      }
      for (const recorded of [finding, ...also]) {
        if (recorded.event === "PASS OLD" || recorded.event === "ALLOWED") continue;
        this.store.recordEvent({
          at: now,
          clientIp: connection.address,
          clientPort: connection.port,
          event: recorded.event,
          check: recorded.check,
          action: recorded.action,
          evidence: recorded.evidence,
        });
      }
    });
  }
}
