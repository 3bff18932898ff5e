import type { ChecksSettings } from "../checks/registry.ts";
import type { CheckActions, CheckFinding, HarvestedDomain, SessionRates } from "../checks/types.ts";
import type { DnsblAnswer, HeloDns, ReverseDns } from "../dns/types.ts";
import type { TarpitConfig } from "./pacing.ts";

/** Contracts of the sans-I/O SMTP core: what goes in (bytes, time, facts) and what comes out. */

export interface SessionConfig {
  readonly hostname: string;
  readonly maxMessageSize: number;
  readonly maxLineLength: number;
  readonly maxRecipients: number;
  /** Each command line must be complete this long after the session began waiting for it. */
  readonly commandTimeoutMs: number;
  /** The same for each line of message content. */
  readonly dataTimeoutMs: number;
  /** Both, at most, in a session begun while the gate was under stress (Postfix's `${stress?{10}:{300}}s`). */
  readonly stressTimeoutMs: number;
  readonly pipelining: boolean;
  /** MXSCREEN_BARE_CR: a CR not followed by LF in message content refuses the message, or becomes a line end (CRLF). */
  readonly bareCr: "reject" | "normalize";
  /** Empty means any domain. */
  readonly acceptDomains: readonly string[];
  /** STARTTLS is offered (a certificate is configured). */
  readonly tls: boolean;
  /** MAIL, RCPT and DATA are asked of the upstream MTA and its answers passed back (MXSCREEN_UPSTREAM). */
  readonly relay: boolean;
  readonly checks: ChecksSettings;
  /** Per check id; a check not listed acts with its default. */
  readonly actions: CheckActions;
  /** MXSCREEN_MODE=observe: every hit is logged, none acts. */
  readonly observe: boolean;
  readonly tarpit: TarpitConfig;
}

export interface ClientInfo {
  readonly address: string;
  readonly port: number;
  /** The address and port the client connected to (at a trusted proxy, the one it named); unknown to a bare core. */
  readonly local?: { readonly address: string; readonly port: number };
  /** On the pass list: skips the tests meant for clients never seen before (EHLO refusal). */
  readonly passed: boolean;
  /** Matched MXSCREEN_ALLOW or an allow entry: no check runs. */
  readonly allowed: boolean;
}

export interface Envelope {
  readonly helo: string;
  /** RFC 3848: ESMTPS once the session runs over TLS. */
  readonly protocol: "SMTP" | "ESMTP" | "ESMTPS";
  /** Empty string for the null sender `<>`. */
  readonly from: string;
  readonly recipients: readonly string[];
  readonly declaredSize: number | undefined;
  /** The client's forward-confirmed reverse DNS as known when DATA began, for the spooled header. */
  readonly reverseDns: ReverseDns | undefined;
}

/** What the gate learnt before the session began: the DNSBL/DNSWL answers that were in by the end of the greet wait. */
export interface GateFacts {
  readonly dnsbl: readonly DnsblAnswer[];
  /** The gate was under stress (`Stress.active`) when it handed the connection over: shorter deadlines apply. */
  readonly stress?: boolean;
  /** For a client not yet passed: the recipient domains under a harvest across the fleet (src/harvest), with their counts. */
  readonly harvested?: readonly HarvestedDomain[];
  /** The fleet's recent messages and recipients from this client, for the rate checks. */
  readonly rates?: SessionRates;
  /**
   * Tarpit this session as if it had this many hits already (a client the gate or the fleet
   * suspects: a domain under a distributed harvest); its own hits add to them.
   */
  readonly tarpitHits?: number;
}

export type Output =
  | { readonly type: "reply"; readonly text: string }
  /**
   * A reply in two parts: write `head` now and `final` after a pause of `stutterMs` plus
   * `tarpitMs` (as much of it as the tarpit's budget allows), and tell the session with every
   * `receive(bytes, now, finalsWritten)` how many such final lines were written by then.
   */
  | { readonly type: "paced-reply"; readonly head: string; readonly final: string; readonly stutterMs: number; readonly tarpitMs: number }
  /** Close once the replies before it are written. */
  | { readonly type: "close" }
  | { readonly type: "message-begin"; readonly envelope: Envelope }
  /** Message content, dot-unstuffed, whole lines ending in CRLF. */
  | { readonly type: "message-data"; readonly bytes: Uint8Array }
  /** The message is complete: deliver it, then call `delivered()` with the outcome. */
  | { readonly type: "message-end" }
  /** Drop what was begun: the client gets an error reply for it. */
  | { readonly type: "message-abort" }
  /** Start the TLS handshake now (the go-ahead was the reply before), then call `tlsStarted()`. */
  | { readonly type: "starttls" }
  /** Ask the upstream MTA; answer with `upstreamReplied()`: the session waits. */
  | { readonly type: "upstream"; readonly command: string }
  /** The transaction was dropped here (RSET, a new EHLO): drop the upstream's too; no answer needed. */
  | { readonly type: "upstream-reset" }
  /**
   * Look up the client's forward-confirmed reverse DNS (once, from `start()`); answer with
   * `learnReverseDns()` always, `temperror` when DNS fails or times out: a DATA waits for it.
   */
  | { readonly type: "lookup-reverse" }
  /** Look up the HELO name's addresses; answer with `learnHeloDns()` whenever: the session does not wait. */
  | { readonly type: "lookup-helo-name"; readonly name: string }
  /** Pass or defer this greylist triplet? Answer with `greylisted()`; the session waits. */
  | { readonly type: "lookup-greylist"; readonly triplet: string }
  /** Can this domain receive mail (MX, A, AAAA)? Answer with `resolved()`; the session waits. */
  | { readonly type: "lookup-mail-domain"; readonly domain: string }
  /** A fact for the log: MAIL, RCPT or DATA (the message) was refused with `reply`; nothing to do. */
  | {
    readonly type: "refused";
    readonly stage: "MAIL" | "RCPT" | "DATA";
    readonly from: string | undefined;
    readonly to: string | undefined;
    readonly reply: string;
  };

/** `reply`: the upstream's own answer, passed back to the client as it is. */
export type DeliveryResult =
  | { readonly ok: true; readonly id: string; readonly reply?: string }
  | { readonly ok: false; readonly temporary: boolean; readonly reason: string; readonly reply?: string };

/** An upstream MTA's reply, or a tempfail we made up because it could not be had. */
export interface UpstreamReply {
  readonly code: number;
  /** The reply as sent, CRLF-terminated lines. */
  readonly text: string;
}

/**
 * `check`: a check closed the connection (its finding says which); `tls-failed`: the handshake
 * after STARTTLS did not complete; `banned`: a ban made while it was open ended it.
 */
export type EndReason = "quit" | "client-closed" | "timeout" | "errors" | "shutdown" | "check" | "tls-failed" | "banned";

/** What the session saw, for the connection's one log line and its verdict. */
export interface SessionFacts {
  helo: string | undefined;
  /** Every HELO/EHLO argument, in order. */
  helos: string[];
  commands: number;
  /**
   * The last command acted on (`CONNECT` before any, `UNIMPLEMENTED` for one we do not know), as
   * postscreen's `where`: a session cut short is logged as after it. A command a check stopped is not acted on.
   */
  where: string;
  errors: number;
  unknownCommands: number;
  bareLineFeeds: number;
  /** Bytes sent after STARTTLS before the handshake: discarded, never executed (CVE-2011-0411). */
  injectedBytes: number;
  tls: boolean;
  recipients: number;
  /** Recipients refused as not ours. */
  badRecipients: number;
  /** Those recipients per domain (lower case; at most MAX_BAD_RECIPIENT_DOMAINS domains), for the fleet's count per domain. */
  badRecipientDomains: [domain: string, count: number][];
  /** RSETs that ended no transaction: a sender resets between messages, a slot holder instead of them. */
  resets: number;
  /** RSETs that ended a transaction: a sender's, between messages. */
  transactionResets: number;
  /** BDAT chunks taken into a message, its last one aside (RFC 3030): they carry mail. */
  chunks: number;
  /** MAIL commands accepted. */
  transactions: number;
  /** Replies written with a pause before their final line (stutter, tarpit). */
  pacedReplies: number;
  /** `transactions` at the last RSET. */
  transactionsAtReset: number;
  /** PIPELINING was offered in the EHLO reply in force. */
  pipeliningOffered: boolean;
  /** EHLO was refused (502) and no HELO came after it. */
  ehloRefusedUnanswered: boolean;
  messages: number;
  /** MAIL, RCPT or messages answered with a 4xx: a real MTA queues the mail and comes back, most bots do not. */
  tempfails: number;
  lastReply: string | undefined;
  end: EndReason | undefined;
  /** Weighted DNSBL/DNSWL score, when zones are configured. */
  dnsblScore: number | undefined;
  /** The HELO name's forward DNS against the client address, once known. */
  heloDns: HeloDns | undefined;
  /** pass, fail, none or temperror (RFC 8601 iprev), once known. */
  fcrdns: ReverseDns["status"] | undefined;
  /** Every check hit, in order, with the action applied. */
  findings: CheckFinding[];
}
