import type { DnsAnswer, DnsblAnswer, ReverseDns } from "../dns/types.ts";
import type { LogValue } from "../log/logger.ts";
import type { Setting } from "../config/setting.ts";
import type { CheckId } from "./registry.ts";

/** ignore = log only, enforce = reject or tempfail, ban = enforce and ban the client prefix fleet-wide. */
export type CheckAction = "ignore" | "enforce" | "ban";
export const CHECK_ACTIONS: readonly CheckAction[] = ["ignore", "enforce", "ban"];

/** What `effectiveAction` makes of a check's action: `observe` when MXSCREEN_MODE=observe keeps every check from acting. */
export type EffectiveAction = CheckAction | "observe";

/** MXSCREEN_ACTION_<CHECK> as configured; a check missing here acts on its default. */
export type CheckActions = Readonly<Partial<Record<string, CheckAction>>>;

/**
 * When a check runs. In the gate: `accept`, when a connection is counted in; `greet`, when a
 * client talks during the greet wait. In the session: `connect`: when the session opens, with the gate's DNS answers;
 * `command`: before each command line is acted on; `helo`: on HELO/EHLO; `mail`: on MAIL FROM,
 * once the sender domain's DNS answer is in; `rcpt`: on RCPT TO, once the recipient's fate is
 * known; `recipient`: on RCPT TO of a recipient about to be accepted (ours, not postmaster@ or
 * abuse@, no delayed rejection) from a client not on the pass list, before greylisting;
 * `triplet`: on RCPT TO of an accepted recipient, once the store has answered for its
 * greylist triplet; `data`: once a message has been read, before it is delivered; `end`: when
 * the client quits or leaves.
 */
export type Stage = "accept" | "greet" | "connect" | "command" | "helo" | "mail" | "rcpt" | "recipient" | "triplet" | "data" | "end";

/**
 * What enforcing a hit does, applied by the session, never by the check.
 * `close`: the hit's reply, then the connection ends (the command is not acted on).
 * `reject`: the hit's reply answers the command; the session goes on.
 * `delay`: the session goes on; every later RCPT but postmaster@/abuse@ gets the hit's reply
 * (RFC 5321 4.5.1; Postfix's smtpd_delay_reject).
 * `record`: nothing is refused; only the action `ban` has an effect, at the end of the session.
 * `greylist`: the recipient goes through greylisting (the `greylist` check decides, at stage
 * `triplet`) even with MXSCREEN_GREYLIST off: a cost for clients not yet passed. The hit is a
 * note on the connection, never its verdict nor a ban: the greylist's own finding is.
 */
export type Consequence = "close" | "reject" | "delay" | "record" | "greylist";

export interface ParsedCommand {
  /** The line as received, clipped to 100 characters: evidence. */
  readonly line: string;
  /** Upper-cased first word. */
  readonly verb: string;
  readonly arg: string;
  /** A command this server implements or knowingly refuses (502). */
  readonly known: boolean;
  /** RFC 2920 3.1: the command must end a pipelined group (src/smtp/verbs.ts). */
  readonly endsGroup: boolean;
  /** The line ended in a bare LF. */
  readonly bareLineFeed: boolean;
  /** More bytes from the client were already waiting when this line was taken (RFC 2920 group). */
  readonly followedByMore: boolean;
  /** The first 100 of those bytes, one character per byte (evidence: what it pushed ahead). */
  readonly ahead: string;
  /**
   * The command arrived before the final line of our paced reply to the one before it (stutter,
   * tarpit): `verb` is that command (`.` for a message's end), `endsGroup` its RFC 2920 rule.
   */
  readonly early: { readonly verb: string; readonly endsGroup: boolean } | undefined;
}

/**
 * The session's running facts a check may read: the session's own facts object, read-only
 * (never a copy made for the check).
 */
export interface SessionView {
  /** Every HELO/EHLO argument in order, the one being considered last. */
  readonly helos: readonly string[];
  readonly commands: number;
  readonly unknownCommands: number;
  /** RSETs that ended no transaction. */
  readonly resets: number;
  /** RSETs that ended a transaction: a sender's, between messages. */
  readonly transactionResets: number;
  /** BDAT chunks taken into a message but its last (the last counts as the message). */
  readonly chunks: number;
  /** MAIL commands accepted. */
  readonly transactions: number;
  /** `transactions` at the last RSET: a MAIL accepted since makes the next RSET end a transaction. */
  readonly transactionsAtReset: number;
  readonly recipients: number;
  readonly messages: number;
  /** Recipients refused as unknown so far, not counting the one being considered. */
  readonly badRecipients: number;
  /** PIPELINING was offered in this session's EHLO reply. */
  readonly pipeliningOffered: boolean;
  /** EHLO was refused (502) and no HELO came after it. */
  readonly ehloRefusedUnanswered: boolean;
}

/** A count over a rate's window, fleet-wide, for the client's address and for its /24 (IPv4) or /64 (IPv6). */
export interface RateCounts {
  readonly client: number;
  readonly prefix: number;
  /** The /24 or /64, as text: evidence. */
  readonly prefixKey: string;
}

/**
 * The fleet's messages (MAIL transactions) and recipients from this client within the last hour,
 * as the gate had heard of them when the session began; the session adds its own to them.
 */
export interface SessionRates {
  readonly messages: RateCounts;
  readonly recipients: RateCounts;
}

/** Everything a check may look at: the session's facts at the moment the check runs, and the command or message at hand. */
export interface CheckFacts {
  /** `local`: the address and port it connected to, when the runner knows them. */
  readonly client: { readonly address: string; readonly local?: { readonly address: string } };
  readonly session: SessionView;
  readonly dnsbl: readonly DnsblAnswer[];
  /** The recipient domains under a harvest across the fleet when the session began, with their counts (GateFacts). */
  readonly harvested: readonly HarvestedDomain[];
  readonly reverseDns: ReverseDns | undefined;
  /** The command being considered (stages `command`, `helo`, `mail`, `rcpt`). */
  readonly command: ParsedCommand | undefined;
  readonly sender: string | undefined;
  readonly senderDomainAnswer: DnsAnswer | undefined;
  readonly recipient: { readonly mailbox: string; readonly known: boolean } | undefined;
  /** The shared store's word on this recipient's greylist triplet (stage `triplet`). */
  readonly greylist: "pass" | "defer" | undefined;
  /** For a message from `<>` once its data is read: whether a Received: line in it names one of MXSCREEN_OWN_HOSTS. */
  readonly bounceNamesUs: boolean | undefined;
  /** Undefined when the gate counts no rates (a bare core, a test). */
  readonly rates: SessionRates | undefined;
}

/** A recipient domain under a harvest: more unknown recipients at it, fleet-wide within the window, than MXSCREEN_HARVEST_THRESHOLD. */
export type HarvestedDomain = readonly [domain: string, unknownRecipients: number];

/** Which limit a new connection would break, with the count it would have made. */
export type LimitBreach = { readonly limit: "client" | "prefix" | "total"; readonly key: string; readonly count: number };

/** What the gate knows at accept: the limit this connection would break, if any. */
export interface AcceptFacts {
  readonly client: { readonly address: string };
  readonly breach: LimitBreach | undefined;
  /** Connections within the last minute, fleet-wide, this one included; undefined when not counted. */
  readonly connectionRate: RateCounts | undefined;
}

/** What the gate knows when a client talks during the greet wait: the first bytes it sent (at most those kept as evidence). */
export interface GreetFacts {
  readonly sent: string;
  readonly afterMs: number;
}

/** The facts each stage's checks get. */
export interface StageFacts {
  readonly accept: AcceptFacts;
  readonly greet: GreetFacts;
  readonly connect: CheckFacts;
  readonly command: CheckFacts;
  readonly helo: CheckFacts;
  readonly mail: CheckFacts;
  readonly rcpt: CheckFacts;
  readonly recipient: CheckFacts;
  readonly triplet: CheckFacts;
  readonly data: CheckFacts;
  readonly end: CheckFacts;
}

/** A check's finding: the reply enforcing it would give, and the evidence for the log and `explain`. */
export interface Hit {
  readonly reply: string;
  readonly evidence: Readonly<Record<string, LogValue>>;
}

/** What every check may read besides its own knobs. */
export interface SharedSettings {
  readonly hostname: string;
  /** MXSCREEN_ACCEPT_DOMAINS (empty: any). */
  readonly acceptDomains: readonly string[];
  /** The addresses of MXSCREEN_LISTEN that name one (not 0.0.0.0 or ::), as formatIP writes them. */
  readonly listenAddresses: readonly string[];
}

/** One heuristic: pure and synchronous, from the facts of its stage and its own knobs to a hit (or nothing). */
export interface Check<Id extends string = string, S = unknown, St extends Stage = Stage> {
  /** Stable kebab-case id, used verbatim in config (MXSCREEN_ACTION_<ID>), logs and the store. */
  readonly id: Id;
  /** Upper-case log tag (README: The log). */
  readonly tag: string;
  readonly stage: St;
  readonly consequence: Consequence;
  readonly defaultAction: CheckAction;
  /** The knobs this check reads, each declared once: the configuration reads them from here, and a test holds the README to them. */
  readonly settings: { readonly [K in keyof S]: Setting<S[K]> };
  evaluate(facts: StageFacts[St], settings: S & SharedSettings): Hit | undefined;
}

/** A hit as the session recorded it, with the action that was applied. */
export interface CheckFinding {
  readonly check: CheckId;
  readonly tag: string;
  readonly action: EffectiveAction;
  readonly consequence: Consequence;
  readonly evidence: Readonly<Record<string, LogValue>>;
}
