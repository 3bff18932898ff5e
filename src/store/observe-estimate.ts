/**
 * What enforcing a check that is only observed would cost, as a pure function of what its
 * clients did (README: Observe before you enforce). A client is one address, across every node.
 */

/** What the events say about one client hit by the check, from its first hit in the window on. */
export interface ClientEvidence {
  /** A session of it scored at or below MXSCREEN_DNSWL_THRESHOLD (a DNSWL listing), in the window. */
  readonly dnswl: boolean;
  /** Banned by another check, or listed by a DNSBL (`dnsbl`), in the window. */
  readonly convicted: boolean;
  /** Its first session at or after its first hit that got a 4xx to MAIL, RCPT or the message; null: none did. */
  readonly tempfailAt: number | null;
  /** A later session of it, on any node, delivered a message after that 4xx: it queued the mail and came back. */
  readonly deliveredAfterTempfail: boolean;
  /** A later session of it ended `PASS NEW`: no check hit at all. */
  readonly passedAfter: boolean;
}

export type Legitimate = "dnswl" | "retried" | "clean-pass";
export type Bot = "convicted" | "no-retry";
export type Unknown = "no-evidence" | "retry-pending";

export type Judgement =
  | { readonly kind: "legitimate"; readonly reason: Legitimate }
  | { readonly kind: "bot"; readonly reason: Bot }
  | { readonly kind: "unknown"; readonly reason: Unknown };

/**
 * The order decides a client with mixed evidence: a DNSWL listing is the operator's own word;
 * a ban or a DNSBL listing outweighs a retry (some bots retry); a retry or a clean session
 * outweighs one 4xx left unanswered.
 */
export function judge(e: ClientEvidence, now: number, retryWindowMs: number): Judgement {
  if (e.dnswl) return { kind: "legitimate", reason: "dnswl" };
  if (e.convicted) return { kind: "bot", reason: "convicted" };
  if (e.deliveredAfterTempfail) return { kind: "legitimate", reason: "retried" };
  if (e.passedAfter) return { kind: "legitimate", reason: "clean-pass" };
  if (e.tempfailAt === null) return { kind: "unknown", reason: "no-evidence" };
  return now - e.tempfailAt >= retryWindowMs ? { kind: "bot", reason: "no-retry" } : { kind: "unknown", reason: "retry-pending" };
}

export type Reasons = Record<Legitimate | Bot | Unknown, number>;

/** One check's estimate, with the counts it comes from. */
export interface CheckEstimate {
  readonly check: string;
  /** Clients hit in the window (the newest `sampleHits` hits when `sampled`). */
  readonly clients: number;
  readonly hits: number;
  /** More hits than were read fell in the window: the counts are of the newest ones. */
  readonly sampled: boolean;
  readonly legitimate: number;
  readonly bot: number;
  readonly unknown: number;
  readonly reasons: Reasons;
  /** legitimate / (legitimate + bot): null while no client has evidence either way. */
  readonly falsePositiveRate: number | null;
  /** The rate if every unknown client were a bot, and if every one were legitimate: legitimate / clients, (legitimate + unknown) / clients. */
  readonly range: readonly [low: number, high: number] | null;
}

export function estimate(
  check: string,
  clients: readonly { readonly hits: number; readonly judgement: Judgement }[],
  sampled: boolean,
): CheckEstimate {
  const reasons: Reasons = { dnswl: 0, retried: 0, "clean-pass": 0, convicted: 0, "no-retry": 0, "no-evidence": 0, "retry-pending": 0 };
  const kinds = { legitimate: 0, bot: 0, unknown: 0 };
  let hits = 0;
  for (const client of clients) {
    hits += client.hits;
    kinds[client.judgement.kind]++;
    reasons[client.judgement.reason]++;
  }
  const decided = kinds.legitimate + kinds.bot;
  const n = clients.length;
  return {
    check,
    clients: n,
    hits,
    sampled,
    ...kinds,
    reasons,
    falsePositiveRate: decided === 0 ? null : kinds.legitimate / decided,
    range: n === 0 ? null : [kinds.legitimate / n, (kinds.legitimate + kinds.unknown) / n],
  };
}

/** `50% (1 of 2 with evidence; 33%–67% counting the 1 unknown)`: the rate as the CLI and the dashboard show it. */
export function describeRate(e: CheckEstimate): string {
  const percent = (value: number) => `${Math.round(value * 100)}%`;
  if (e.falsePositiveRate === null || e.range === null) return `no evidence yet (${e.unknown} unknown)`;
  const decided = e.legitimate + e.bot;
  const range = e.unknown === 0 ? "" : `; ${percent(e.range[0])}–${percent(e.range[1])} counting the ${e.unknown} unknown`;
  return `${percent(e.falsePositiveRate)} (${e.legitimate} of ${decided} with evidence${range})`;
}
