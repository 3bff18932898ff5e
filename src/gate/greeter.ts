import { bytesToText } from "../log/escape.ts";
import { concatBytes } from "../smtp/bytes.ts";
import { looksLikeProxyHeader } from "../net/proxy-protocol.ts";
import { pregreet } from "../checks/pregreet.ts";
import { effectiveAction } from "../checks/registry.ts";
import { decider, type Finding, type GateAction, type GateConfig } from "./types.ts";
import type { ListEntry, Standing } from "../store/types.ts";

/** What a ban says about a connection it refused or ended: its prefix, reason and node. */
export function bannedFinding(entry: ListEntry, action: Finding["action"], ended?: "greet-wait" | "session"): Finding {
  return {
    event: "BANNED",
    check: decider(entry.check),
    action,
    evidence: { ban: entry.prefix, reason: entry.reason ?? undefined, by: entry.node, ended },
  };
}

/** What a live connection is told when a ban made while it is open ends it. */
export function bannedLiveReply(hostname: string): string {
  return `421 4.7.1 ${hostname} Service unavailable; client banned by policy, closing connection\r\n`;
}

/** Bytes of an early talker kept as evidence, and at most handed on when the test only logs. */
const EARLY_BYTES_KEPT = 1024;

/**
 * The gate's part of one connection, sans I/O (postscreen_early.c's job): the ban gate, the
 * `220-` teaser, the greet wait, and the pregreet test. The deadline lives here; the caller
 * calls `tick` when it is due.
 */
export class Greeter {
  private waiting = false;
  private openedAt = 0;
  private early: Uint8Array[] | undefined;
  private earlyBytes = 0;
  /** A finding that was only logged (action ignore, or observe mode): the session goes on. */
  noted: Finding | undefined;
  deadline = Infinity;

  constructor(private readonly config: GateConfig) {}

  /** `stressed`: the process is under stress, and the greet wait is the short one. */
  open(standing: Standing, now: number, stressed = false): GateAction[] {
    this.openedAt = now;
    const banner = `${this.config.hostname} ESMTP`;
    if (standing.kind === "banned") {
      const finding = bannedFinding(standing.entry, this.config.observe ? "observe" : this.config.banAction);
      if (!this.config.observe) {
        const refusal: GateAction[] = this.config.banAction === "drop"
          ? [{ type: "drop" }]
          : [{ type: "write", text: `554 5.7.1 ${this.config.hostname} Service unavailable; client refused by policy\r\n` }, {
            type: "close",
          }];
        return [...refusal, { type: "conclude", finding }];
      }
      this.noted = finding;
    }
    if (standing.kind === "allowed" || standing.kind === "passed") {
      return [{ type: "write", text: `220 ${banner}\r\n` }, { type: "handoff", early: undefined }];
    }
    this.waiting = true;
    this.deadline = now + (stressed ? this.config.greetWaitStressMs : this.config.greetWaitMs);
    return [{ type: "write", text: `220-${banner}\r\n` }];
  }

  receive(bytes: Uint8Array, now: number): GateAction[] {
    if (!this.waiting) return [];
    const keep = bytes.subarray(0, Math.max(0, EARLY_BYTES_KEPT - this.earlyBytes));
    if (keep.length > 0) (this.early ??= []).push(keep.slice());
    const firstByte = this.earlyBytes === 0;
    this.earlyBytes += bytes.length;
    if (!firstByte) return [];
    if (looksLikeProxyHeader(bytes)) {
      // A load balancer not (yet) in MXSCREEN_TRUSTED_PROXIES: refuse it, but do not ban it.
      this.waiting = false;
      this.deadline = Infinity;
      const reason = "PROXY header from an address not in MXSCREEN_TRUSTED_PROXIES";
      return [{ type: "drop" }, {
        type: "conclude",
        finding: { event: "PROXY", check: "proxy-protocol", action: "close", evidence: { reason, sent: bytesToText(keep) } },
      }];
    }
    const hit = pregreet.evaluate({ afterMs: now - this.openedAt, sent: bytesToText(keep) }, this.config.checks);
    if (hit === undefined) return [];
    const action = effectiveAction(pregreet, this.config.actions, this.config.observe);
    const finding: Finding = { event: pregreet.tag, check: pregreet.id, action, evidence: hit.evidence };
    if (action === "ignore" || action === "observe") {
      this.noted ??= finding;
      return [];
    }
    this.waiting = false;
    this.deadline = Infinity;
    // No reply to what it sent: an early talker is not reading what we say (postscreen drops it the same way).
    return [{ type: "drop" }, { type: "conclude", finding: { ...finding, evidence: { ...finding.evidence, bytes: this.earlyBytes } } }];
  }

  tick(now: number): GateAction[] {
    if (!this.waiting || now < this.deadline) return [];
    return this.release();
  }

  /** Ends the greet wait now (the client turned out to be allowed): the final 220 and the session. */
  release(): GateAction[] {
    if (!this.waiting) return [];
    this.waiting = false;
    this.deadline = Infinity;
    const early = this.early === undefined ? undefined : concatBytes(this.early);
    this.early = undefined;
    return [{ type: "write", text: `220 ${this.config.hostname} ESMTP\r\n` }, { type: "handoff", early }];
  }

  /** A ban made while the client waits out the greeting: `421 4.7.1` (or a drop, MXSCREEN_BAN_ACTION) instead of the final 220. */
  banned(entry: ListEntry): GateAction[] {
    if (!this.waiting) return [];
    this.waiting = false;
    this.deadline = Infinity;
    this.early = undefined;
    const refusal: GateAction[] = this.config.banAction === "drop"
      ? [{ type: "drop" }]
      : [{ type: "write", text: bannedLiveReply(this.config.hostname) }, { type: "close" }];
    return [...refusal, {
      type: "conclude",
      finding: bannedFinding(entry, this.config.banAction === "drop" ? "drop" : "close", "greet-wait"),
    }];
  }

  /** The client sent bytes during the greet wait. */
  get talked(): boolean {
    return this.earlyBytes > 0;
  }

  /** The client left while we were still deciding. */
  hangup(now: number): Finding | undefined {
    if (!this.waiting) return undefined;
    this.waiting = false;
    return { event: "HANGUP", check: "greet-wait", action: "none", evidence: { after_ms: now - this.openedAt } };
  }
}
