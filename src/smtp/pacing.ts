import type { CheckFinding } from "../checks/types.ts";

/** The replies stutter makes multi-line for a client not yet passed: the commands a bot that does not read replies sends next. */
const STUTTERED = new Set(["HELO", "EHLO", "MAIL", "RCPT"]);

/** The checks whose hits say nothing bad of the client: they add no tarpit (a missing PTR, our own greylisting doubt). */
const NOT_MISBEHAVIOUR = new Set(["ptr", "greylist"]);

/** MXSCREEN_TARPIT_DELAY and MXSCREEN_TARPIT_MAX: what each hit adds before a reply's final line, and the most any reply waits. */
export interface TarpitConfig {
  readonly delayMs: number;
  readonly maxMs: number;
}

/** A reply sent in two parts: `head` at once (empty for a single line), `final` after the pause. */
export interface PacedReply {
  readonly head: string;
  readonly final: string;
}

/**
 * A reply split before its final line. A single-line 2xx reply gets a first line of its own
 * (`250-2.1.0 host` then `250 2.1.0 Ok`): RFC 5321 4.2.1 allows any reply to be multi-line,
 * and a client must read up to the final line before it may send what RFC 2920 does not let it
 * pipeline. A single-line reply that is not stuttered keeps its one line (`head` empty).
 */
export function splitReply(text: string, hostname: string, multiLine: boolean): PacedReply {
  const lines = text.split(/(?<=\r\n)/);
  if (lines.length > 1) return { head: lines.slice(0, -1).join(""), final: lines[lines.length - 1] };
  if (!multiLine) return { head: "", final: text };
  const enhanced = /^\d{3} (\d\.\d{1,3}\.\d{1,3} )?/.exec(text)?.[1] ?? "";
  return { head: `${text.slice(0, 3)}-${enhanced}${hostname}\r\n`, final: text };
}

/** Whether the reply to `verb` is stuttered: a positive answer to a command a bot pushes behind it without reading. */
export function stutters(verb: string, reply: string): boolean {
  return STUTTERED.has(verb) && reply[0] === "2";
}

/** Hits that count towards the tarpit: whatever the action (logged, observed or enforced), but not those that say nothing bad of the client. */
export function tarpitHits(findings: readonly CheckFinding[]): number {
  return findings.filter((finding) => finding.consequence !== "record" && !NOT_MISBEHAVIOUR.has(finding.check)).length;
}

/** The pause before each reply's final line for a client with `hits` (OpenBSD spamd's stutter, Haraka's tarpit): growing with each hit, up to the cap. */
export function tarpitDelayMs(hits: number, config: TarpitConfig): number {
  return Math.min(config.maxMs, hits * config.delayMs);
}
