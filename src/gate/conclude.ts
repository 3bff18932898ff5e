import { clientPrefix, type IP } from "../ip/address.ts";
import type { Metrics } from "../admin/metrics.ts";
import type { Logger } from "../log/logger.ts";
import type { SessionFacts } from "../smtp/types.ts";
import type { Store } from "../store/store.ts";
import type { Finding, Standing } from "./types.ts";

export interface ConcludeConfig {
  readonly banTtlMs: number;
  readonly passTtlMs: number;
  readonly ipv6PrefixLength: number;
}

export interface ConnectionRecord {
  readonly ip: IP;
  readonly address: string;
  readonly port: number;
  readonly openedAt: number;
  /** The trusted proxy that named this client in a PROXY header. */
  readonly via?: string;
}

/** `192.0.2.1:4321` or `[2001:db8::1]:4321`, as the log shows a client. */
export function clientLabel(connection: ConnectionRecord): string {
  return connection.ip.family === 6 ? `[${connection.address}]:${connection.port}` : `${connection.address}:${connection.port}`;
}

/** The finding for a connection that reached an SMTP session, from how that session ended. */
export function sessionFinding(standing: Standing, noted: Finding | undefined, facts: SessionFacts): Finding {
  const evidence = {
    helo: facts.helo,
    commands: facts.commands,
    messages: facts.messages,
    recipients: facts.recipients,
    errors: facts.errors,
    tls: facts.tls || undefined,
    injected_bytes: facts.injectedBytes || undefined,
    end: facts.end,
  };
  if (noted) return { ...noted, evidence: { ...noted.evidence, ...evidence } };
  if (facts.end === "timeout") return { event: "TIMEOUT", check: "timeout", action: "close", evidence };
  if (facts.end === "errors") return { event: "ERROR-LIMIT", check: "error-limit", action: "close", evidence };
  if (facts.end === "shutdown") return { event: "SHUTDOWN", check: "none", action: "close", evidence };
  if (standing.kind === "allowed") return { event: "ALLOWED", check: "allow", action: "pass", evidence: { ...evidence, allow: standing.source } };
  if (standing.kind === "passed") return { event: "PASS OLD", check: "none", action: "pass", evidence };
  return { event: "PASS NEW", check: "none", action: "pass", evidence };
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

  conclude(connection: ConnectionRecord, finding: Finding, now: number): void {
    this.logger.log({
      event: finding.event,
      client: clientLabel(connection),
      ...finding.evidence,
      duration_ms: now - connection.openedAt,
      via: connection.via,
      action: finding.action,
    });
    this.metrics.verdict(finding.event.toLowerCase().replace(/ /g, "-"), (now - connection.openedAt) / 1000, now);
    if (finding.check !== "none") this.metrics.inc("mxscreen_check_hits_total", { check: finding.check, action: finding.action });
    const prefix = clientPrefix(connection.ip, this.config.ipv6PrefixLength);
    if (finding.action === "ban") {
      this.store.set("ban", {
        prefix,
        ttlMs: this.config.banTtlMs,
        check: finding.check,
        reason: finding.event,
        evidence: finding.evidence,
      }, now);
    }
    if (finding.event === "PASS NEW") {
      this.store.set("pass", { prefix, ttlMs: this.config.passTtlMs, check: "pregreet", reason: "passed" }, now);
    }
    if (finding.event !== "PASS OLD" && finding.event !== "ALLOWED") {
      this.store.recordEvent({
        at: now,
        clientIp: connection.address,
        clientPort: connection.port,
        event: finding.event,
        check: finding.check,
        action: finding.action,
        evidence: finding.evidence,
      });
    }
  }
}
