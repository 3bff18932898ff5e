import type { DnsAnswer, DnsblAnswer, ReverseDns } from "../dns/types.ts";
import type { LogValue } from "../log/logger.ts";

/** ignore = log only, enforce = reject or tempfail, ban = enforce and ban the client prefix fleet-wide. */
export type CheckAction = "ignore" | "enforce" | "ban";
export const CHECK_ACTIONS: readonly CheckAction[] = ["ignore", "enforce", "ban"];

/**
 * When a check runs. `connect`: when the session opens, with the gate's DNS answers;
 * `command`: before each command line is acted on; `helo`: on HELO/EHLO; `mail`: on MAIL FROM,
 * once the sender domain's DNS answer is in; `rcpt`: on RCPT TO, once the recipient's fate is
 * known; `triplet`: on RCPT TO of an accepted recipient, once the store has answered for its
 * greylist triplet; `data`: once a message has been read, before it is delivered; `end`: when
 * the client quits or leaves.
 */
export type Stage = "connect" | "command" | "helo" | "mail" | "rcpt" | "triplet" | "data" | "end";

/**
 * What enforcing a hit does, applied by the session, never by the check.
 * `close`: the hit's reply, then the connection ends (the command is not acted on).
 * `reject`: the hit's reply answers the command; the session goes on.
 * `delay`: the session goes on; every later RCPT but postmaster@/abuse@ gets the hit's reply
 * (RFC 5321 4.5.1, seeds 002 and 004: delayed rejection).
 * `record`: nothing is refused; only the action `ban` has an effect, at the end of the session.
 */
export type Consequence = "close" | "reject" | "delay" | "record";

export interface ParsedCommand {
  /** The line as received, clipped to 100 characters: evidence. */
  readonly line: string;
  /** Upper-cased first word. */
  readonly verb: string;
  readonly arg: string;
  /** A command this server implements or knowingly refuses (502). */
  readonly known: boolean;
  /** The line ended in a bare LF. */
  readonly bareLineFeed: boolean;
  /** More bytes from the client were already waiting when this line was taken (RFC 2920 group). */
  readonly followedByMore: boolean;
  /** The first 100 of those bytes, one character per byte (evidence: what it pushed ahead). */
  readonly ahead: string;
}

/** Everything a check may look at: the session's facts at the moment the check runs. */
export interface CheckFacts {
  readonly client: { readonly address: string };
  /** The command being considered (stages `command`, `helo`, `mail`, `rcpt`). */
  readonly command: ParsedCommand | undefined;
  /** PIPELINING was offered in this session's EHLO reply. */
  readonly pipeliningOffered: boolean;
  /** Every HELO/EHLO argument in order, the one being considered last. */
  readonly helos: readonly string[];
  /** EHLO was refused (502) and no HELO came after it. */
  readonly ehloRefusedUnanswered: boolean;
  readonly commands: number;
  /** Commands that carried no mail: all but accepted MAIL and RCPT, the DATA of delivered messages and RSETs ending a transaction. */
  readonly chatter: number;
  readonly unknownCommands: number;
  /** RSETs that ended no transaction (see `mailSinceReset`). */
  readonly resets: number;
  /** MAIL commands accepted. */
  readonly transactions: number;
  /** A MAIL was accepted since the last RSET (or since the session began): an RSET now ends a transaction. */
  readonly mailSinceReset: boolean;
  /** Recipients refused as unknown so far, not counting the one being considered. */
  readonly badRecipients: number;
  readonly sender: string | undefined;
  readonly senderDomainAnswer: DnsAnswer | undefined;
  readonly recipient: { readonly mailbox: string; readonly known: boolean } | undefined;
  /** The shared store's word on this recipient's greylist triplet (stage `triplet`). */
  readonly greylist: "pass" | "defer" | undefined;
  /** For a message from `<>` once its data is read: whether a Received: line in it names one of MXSCREEN_OWN_HOSTS. */
  readonly bounceNamesUs: boolean | undefined;
  readonly dnsbl: readonly DnsblAnswer[];
  readonly reverseDns: ReverseDns | undefined;
}

/** A check's finding: the reply enforcing it would give, and the evidence for the log and `explain`. */
export interface Hit {
  readonly reply: string;
  readonly evidence: Readonly<Record<string, LogValue>>;
}

/** One heuristic: pure and synchronous, from facts to a hit (or nothing). */
export interface Check {
  /** Stable kebab-case id, used verbatim in config (MXSCREEN_ACTION_<ID>), logs and the store. */
  readonly id: string;
  /** Upper-case log tag (SPEC §2). */
  readonly tag: string;
  readonly stage: Stage;
  readonly consequence: Consequence;
  readonly defaultAction: CheckAction;
  evaluate(facts: CheckFacts, settings: ChecksSettings): Hit | undefined;
}

/** A weighted DNSBL/DNSWL entry, postscreen style: `zone=127.0.0.[2..11]*3`. */
export interface DnsblSite {
  readonly zone: string;
  /** Per octet, the accepted values; undefined accepts any 127.0.0.0/8 answer but 127.255.255.x. */
  readonly filter: readonly (readonly [number, number])[][] | undefined;
  readonly weight: number;
}

/** The knobs every check reads, frozen at start-up. */
export interface ChecksSettings {
  readonly hostname: string;
  readonly maxUnknownCommands: number;
  readonly maxResets: number;
  readonly maxTransactions: number;
  readonly maxBadRecipients: number;
  readonly maxCommands: number;
  readonly trap: boolean;
  readonly trapRecipients: readonly string[];
  readonly dnsbl: readonly DnsblSite[];
  readonly dnsblThreshold: number;
  readonly dnswlThreshold: number;
  /** Lower-case host names our mail leaves from (MXSCREEN_OWN_HOSTS): a real bounce names one. */
  readonly ownHosts: readonly string[];
}

/** A hit as the session recorded it, with the action that was applied. */
export interface CheckFinding {
  readonly check: string;
  readonly tag: string;
  /** The configured action, or `observe` when MXSCREEN_MODE=observe kept it from acting. */
  readonly action: CheckAction | "observe";
  readonly consequence: Consequence;
  readonly evidence: Readonly<Record<string, LogValue>>;
}
