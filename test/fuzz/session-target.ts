import process from "node:process";
import { bytesToText, escapeLogText } from "../../src/log/escape.ts";
import { concatBytes } from "../../src/smtp/bytes.ts";
import { Session } from "../../src/smtp/session.ts";
import type { DnsAnswer, HeloDns, ReverseDns } from "../../src/dns/types.ts";
import type { DeliveryResult, GateFacts, Output, SessionConfig } from "../../src/smtp/types.ts";
import { CLIENT, CONFIG } from "../smtp/transcript.ts";
import type { Failure, Target } from "./engine.ts";
import { replyProblem } from "./reply-form.ts";
import type { Rng } from "./rng.ts";
import { clientInput, noiseLevel } from "./smtp-input.ts";
import { upstreamReply } from "./smtp-replies.ts";

/**
 * The sans-I/O SMTP session as a fuzz target. An input is a configuration and a list of steps:
 * the client's socket reads, clock jumps, the runner's answers to what the session asked (in
 * any order, late, after the client hung up), facts learnt on the side, a shutdown. After the
 * steps the runner answers whatever is still pending and the client leaves, as they always
 * do in the end. Every output is checked as it comes; then the same client bytes are fed
 * whole and in the input's reads, with answers that do not depend on timing, and the replies
 * must be the same.
 */

export interface Setup {
  readonly relay: boolean;
  readonly pipelining: boolean;
  readonly greylist: boolean;
  readonly observe: boolean;
  readonly tls: boolean;
  readonly ehloRefusal: boolean;
  /** Every check at its default action; else as the transcript tests, pipelining ignored. */
  readonly strict: boolean;
  readonly passed: boolean;
  readonly allowed: boolean;
  readonly maxLineLength: number;
  readonly maxMessageSize: number;
  readonly maxRecipients: number;
  readonly anyDomain: boolean;
  readonly ownHosts: boolean;
  readonly trap: boolean;
  readonly dnsbl: "none" | "listed" | "clean" | "allowlisted" | "error";
  /** Stutter and tarpit on; a read whose first byte is odd arrives before a paced reply's final line. */
  readonly pacing: boolean;
}

export type Step =
  | { readonly t: "read"; readonly data: Uint8Array }
  | { readonly t: "clock"; readonly ms: number }
  /** Answers pending question number `which` (modulo how many there are), oldest first. */
  | { readonly t: "answer"; readonly which: number; readonly variant: number }
  | { readonly t: "learn"; readonly variant: number }
  | { readonly t: "hang-up" }
  | { readonly t: "shutdown" }
  /** A ban made while the session is open covers its client (src/gate/screening.ts). */
  | { readonly t: "banned" };

export interface SessionInput {
  readonly setup: Setup;
  readonly steps: readonly Step[];
}

export const DEFAULT_SETUP: Setup = {
  relay: false,
  pipelining: false,
  greylist: false,
  observe: false,
  tls: false,
  ehloRefusal: false,
  strict: false,
  passed: false,
  allowed: false,
  maxLineLength: 1000,
  maxMessageSize: 1000,
  maxRecipients: 3,
  anyDomain: false,
  ownHosts: false,
  trap: false,
  dnsbl: "none",
  pacing: false,
};

/** One socket read, given in latin1: one character per byte. */
export const read = (latin1: string): Step => ({ t: "read", data: toBytes(latin1) });
export const clock = (ms: number): Step => ({ t: "clock", ms });
export const answer = (which: number, variant: number): Step => ({ t: "answer", which, variant });
export const learn = (variant: number): Step => ({ t: "learn", variant });
export const hangUp = (): Step => ({ t: "hang-up" });
export const shutdown = (): Step => ({ t: "shutdown" });
export const banned = (): Step => ({ t: "banned" });
const BANNED_REPLY = "421 4.7.1 mx.test.example Service unavailable; client banned by policy, closing connection\r\n";

const DNSBL_ZONE = "bl.test.example";

function sessionConfig(setup: Setup, ignorePipelining: boolean): SessionConfig {
  const actions = setup.strict ? {} : CONFIG.actions;
  return {
    ...CONFIG,
    maxLineLength: setup.maxLineLength,
    maxMessageSize: setup.maxMessageSize,
    maxRecipients: setup.maxRecipients,
    pipelining: setup.pipelining,
    acceptDomains: setup.anyDomain ? [] : CONFIG.acceptDomains,
    tls: setup.tls,
    relay: setup.relay,
    observe: setup.observe,
    // Whether a command was pipelined depends on read boundaries by definition; so do pauses (a
    // reply is paced when it is the last of a read's), hence no pacing when splits are compared.
    actions: ignorePipelining ? { ...actions, pipelining: "ignore" } : actions,
    tarpit: setup.pacing && !ignorePipelining ? { delayMs: 100, maxMs: 300 } : CONFIG.tarpit,
    checks: {
      ...CONFIG.checks,
      greylist: setup.greylist,
      ehloRefusal: setup.ehloRefusal,
      ownHosts: setup.ownHosts ? ["mx.test.example"] : [],
      trapRecipients: setup.trap ? ["trap@example.org"] : [],
      dnsbl: setup.dnsbl === "none" ? [] : [{ zone: DNSBL_ZONE, filter: undefined, weight: setup.dnsbl === "allowlisted" ? -2 : 1 }],
      stutter: setup.pacing && !ignorePipelining,
      stutterDelayMs: 50,
    },
  };
}

function gateFacts(setup: Setup): GateFacts {
  switch (setup.dnsbl) {
    case "none":
      return { dnsbl: [] };
    case "clean":
      return { dnsbl: [{ zone: DNSBL_ZONE, answer: { status: "nxdomain" } }] };
    case "error":
      return { dnsbl: [{ zone: DNSBL_ZONE, answer: { status: "error", reason: "timeout" } }] };
    default:
      return { dnsbl: [{ zone: DNSBL_ZONE, answer: { status: "ok", records: ["127.0.0.2"], ttl: 300 } }] };
  }
}

type Question =
  | { readonly kind: "mail-domain"; readonly seq: number; readonly domain: string }
  | { readonly kind: "greylist"; readonly seq: number }
  | { readonly kind: "upstream"; readonly seq: number; readonly command: string }
  | { readonly kind: "delivery"; readonly seq: number }
  | { readonly kind: "tls"; readonly seq: number }
  | { readonly kind: "helo-name"; readonly seq: number; readonly name: string }
  | { readonly kind: "reverse"; readonly seq: number };

function mailDomainAnswer(variant: number, domain: string): DnsAnswer {
  switch (variant % 8) {
    case 0:
    case 1:
    case 6:
    case 7:
      return { status: "ok", records: [`mx.${domain}`], ttl: 300 };
    case 2:
      return { status: "ok", records: ["."], ttl: 300 };
    case 3:
      return { status: "nxdomain" };
    case 4:
      return { status: "error", reason: "SERVFAIL" };
    default:
      return { status: "ok", records: ["192.0.2.7", "2001:db8::7"], ttl: 0 };
  }
}

function deliveryResult(variant: number, relay: boolean): DeliveryResult {
  const id = `Q${(variant >>> 4).toString(36)}`;
  switch (variant % 6) {
    case 0:
    case 1:
      return relay ? { ok: true, id, reply: upstreamReply("DATA-END", variant).text } : { ok: true, id };
    case 2:
      return { ok: false, temporary: true, reason: "spool write failed" };
    case 3:
      return { ok: false, temporary: false, reason: "message refused" };
    case 4: {
      const { code, text } = upstreamReply("DATA-END", variant);
      return code < 400 ? { ok: true, id, reply: text } : { ok: false, temporary: code < 500, reason: "upstream refused", reply: text };
    }
    default:
      return { ok: true, id };
  }
}

const HELO_OUTCOMES: readonly HeloDns[] = ["match", "mismatch", "none", "temperror"];

function reverseDns(variant: number): ReverseDns {
  switch (variant % 4) {
    case 0:
      return { status: "pass", name: ["mail.client.example", "a.b", "x.y.z.example", "localhost"][(variant >>> 2) % 4] };
    case 1:
      return { status: "fail", names: ["other.example"] };
    case 2:
      return { status: "none" };
    default:
      return { status: "temperror", reason: "timeout" };
  }
}

const WAITS = new Set(["mail-domain", "greylist", "upstream", "delivery", "tls"]);

function toBytes(latin1: string): Uint8Array {
  const bytes = new Uint8Array(latin1.length);
  for (let i = 0; i < latin1.length; i++) bytes[i] = latin1.charCodeAt(i);
  return bytes;
}

/** Plays one session as a runner would, checking every output as it comes. */
class Driver {
  readonly session: Session;
  now = 0;
  calls = 0;
  failure: Failure | undefined;
  /** What ended the session for the runner: its `close` output, or the client hanging up. */
  private ended: string | undefined;
  private inMessage = false;
  private waiting: Question | undefined;
  readonly pending: Question[] = [];
  private asked = 0;
  replies = "";
  /** The last reply was paced: its final line is (as this driver plays it) not written yet. */
  private paced = false;
  private clientBytes = 0;
  private upstreamBytes = 0;
  private dataBytes = 0;
  private outputs = 0;
  /** Output types this run produced: how deep into the state machine inputs get. */
  readonly seen = new Set<string>();

  constructor(private readonly setup: Setup, ignorePipelining: boolean) {
    this.session = new Session(
      sessionConfig(setup, ignorePipelining),
      { ...CLIENT, passed: setup.passed, allowed: setup.allowed },
      0,
      gateFacts(setup),
    );
    this.take("start()", this.session.start());
  }

  private fail(invariant: string, detail: string, evidence?: string): void {
    this.failure ??= { invariant, detail, evidence };
  }

  private take(call: string, outputs: Output[]): void {
    this.calls++;
    for (const output of outputs) this.check(call, output);
    if (!Number.isFinite(this.session.deadline)) this.fail("deadline is a time", `deadline is ${this.session.deadline} after ${call}`);
  }

  private check(call: string, output: Output): void {
    this.outputs++;
    this.seen.add(output.type);
    if (this.ended !== undefined) {
      return this.fail("nothing after close", `${output.type} output by ${call} after ${this.ended}`, describeOutput(output));
    }
    switch (output.type) {
      case "reply": {
        const problem = replyProblem(output.text);
        if (problem !== undefined) this.fail("well-formed replies", problem, escapeLogText(output.text.slice(0, 600)));
        this.replies += output.text;
        this.paced = false;
        return;
      }
      case "paced-reply": {
        const text = output.head + output.final;
        const problem = replyProblem(text) ?? (/\r\n./.test(output.final) ? "a paced reply's final part is more than one line" : undefined);
        if (problem !== undefined) this.fail("well-formed replies", problem, escapeLogText(text.slice(0, 600)));
        if (!this.setup.pacing) this.fail("paced replies only when configured", `paced-reply without stutter or tarpit (${call})`);
        if (!(output.stutterMs >= 0 && output.tarpitMs >= 0 && output.tarpitMs <= 300)) {
          this.fail("pauses within the limits", `stutter ${output.stutterMs} ms, tarpit ${output.tarpitMs} ms (${call})`);
        }
        this.replies += text;
        this.paced = true;
        return;
      }
      case "close":
        this.ended = `the close output of ${call}`;
        if (!this.session.closed) this.fail("close means closed", `session.closed is false after its close output (${call})`);
        if (this.session.facts.end === undefined) {
          this.fail("close means closed", `no end reason in the facts after the close output (${call})`);
        }
        return;
      case "message-begin": {
        if (this.inMessage) this.fail("messages do not nest", `message-begin inside a message (${call})`);
        const n = output.envelope.recipients.length;
        if (n < 1 || n > this.setup.maxRecipients) {
          this.fail("a message has 1 to the configured number of recipients", `message-begin with ${n} recipients (${call})`);
        }
        this.inMessage = true;
        return;
      }
      case "message-data":
        if (!this.inMessage) this.fail("message data inside a message", `message-data outside a message (${call})`);
        if (output.bytes.length < 2 || output.bytes[output.bytes.length - 2] !== 0x0d || output.bytes[output.bytes.length - 1] !== 0x0a) {
          this.fail(
            "message data in whole lines",
            `message-data not ending in CRLF (${call})`,
            escapeLogText(bytesToText(output.bytes.subarray(-40), 40)),
          );
        }
        this.dataBytes += output.bytes.length;
        return;
      case "message-end":
        if (!this.inMessage) this.fail("message-end ends a message", `message-end without message-begin (${call})`);
        this.inMessage = false;
        return this.ask({ kind: "delivery", seq: this.asked++ }, call);
      case "message-abort":
        this.inMessage = false;
        return;
      case "starttls":
        return this.ask({ kind: "tls", seq: this.asked++ }, call);
      case "upstream":
        if (!this.setup.relay) this.fail("upstream only when relaying", `upstream output without relay (${call})`);
        return this.ask({ kind: "upstream", seq: this.asked++, command: output.command }, call);
      case "upstream-reset":
        if (!this.setup.relay) this.fail("upstream only when relaying", `upstream-reset output without relay (${call})`);
        return;
      case "lookup-helo-name":
        return this.ask({ kind: "helo-name", seq: this.asked++, name: output.name }, call);
      case "lookup-greylist":
        if (!this.setup.greylist) this.fail("greylist only when configured", `lookup-greylist without greylisting (${call})`);
        return this.ask({ kind: "greylist", seq: this.asked++ }, call);
      case "lookup-mail-domain":
        return this.ask({ kind: "mail-domain", seq: this.asked++, domain: output.domain }, call);
      case "lookup-reverse":
        return this.ask({ kind: "reverse", seq: this.asked++ }, call);
    }
  }

  private ask(question: Question, call: string): void {
    if (WAITS.has(question.kind)) {
      if (this.waiting !== undefined) {
        this.fail("one question at a time", `${question.kind} asked by ${call} while waiting for ${this.waiting.kind}`);
      }
      this.waiting = question;
    }
    this.pending.push(question);
  }

  read(bytes: Uint8Array): void {
    this.clientBytes += bytes.length;
    const early = this.paced && bytes.length > 0 && bytes[0] % 2 === 1;
    const paced = this.session.facts.pacedReplies;
    this.take("receive()", this.session.receive(bytes, this.now, early ? paced - 1 : paced));
  }

  clock(ms: number): void {
    this.now += ms;
    this.take("tick()", this.session.tick(this.now));
  }

  answer(which: number, variant: number): void {
    if (this.pending.length === 0) return;
    const [question] = this.pending.splice(which % this.pending.length, 1);
    if (question === this.waiting) this.waiting = undefined;
    const s = this.session;
    switch (question.kind) {
      case "mail-domain":
        return this.take("resolved()", s.resolved(mailDomainAnswer(variant, question.domain), this.now));
      case "greylist":
        return this.take("greylisted()", s.greylisted(variant % 3 === 0 ? "defer" : "pass", this.now));
      case "upstream": {
        const reply = upstreamReply(question.command, variant);
        this.upstreamBytes += reply.text.length;
        return this.take("upstreamReplied()", s.upstreamReplied(reply, this.now));
      }
      case "delivery": {
        const result = deliveryResult(variant, this.setup.relay);
        this.upstreamBytes += result.reply?.length ?? 0;
        return this.take("delivered()", s.delivered(result, this.now));
      }
      case "tls":
        return this.take("tlsStarted()", s.tlsStarted(variant % 4 !== 0, this.now));
      case "helo-name":
        this.calls++;
        return s.learnHeloDns(question.name, HELO_OUTCOMES[variant % 4]);
      case "reverse":
        return this.take("learnReverseDns()", s.learnReverseDns(reverseDns(variant)));
    }
  }

  /** Answers the reverse DNS question, when it is still open: the answer comes whenever DNS gives it. */
  learn(variant: number): void {
    const at = this.pending.findIndex((question) => question.kind === "reverse");
    if (at >= 0) this.answer(at, variant);
  }

  hangUp(): void {
    if (this.ended !== undefined) return;
    this.take("clientClosed()", this.session.clientClosed());
    this.ended = "clientClosed()";
  }

  shutdown(): void {
    this.take("shutdown()", this.session.shutdown());
  }

  banned(): void {
    this.take("banned()", this.session.banned(BANNED_REPLY));
  }

  /** Answers everything pending, oldest first, with answers that depend only on the order questions were asked. */
  answerAll(skip: ReadonlySet<string> = new Set()): void {
    for (let round = 0; round < 10_000 && this.failure === undefined; round++) {
      const at = this.pending.findIndex((q) => !skip.has(q.kind));
      if (at < 0) return;
      this.answer(at, this.pending[at].seq);
    }
  }

  /** Output bounded by input: a reply storm is a bug even when every reply is well formed. */
  checkBounds(): void {
    const replyBytes = this.replies.length;
    if (replyBytes > 64 * this.clientBytes + this.upstreamBytes + 4096) {
      this.fail("output bounded by input", `${replyBytes} reply bytes for ${this.clientBytes} client bytes`);
    }
    if (this.dataBytes > 2 * this.clientBytes) {
      this.fail("output bounded by input", `${this.dataBytes} message bytes for ${this.clientBytes} client bytes`);
    }
    if (this.outputs > 8 * this.clientBytes + 8 * this.asked + 64) {
      this.fail("output bounded by input", `${this.outputs} outputs for ${this.clientBytes} client bytes`);
    }
  }
}

function describeOutput(output: Output): string {
  if (output.type === "reply") return escapeLogText(output.text);
  if (output.type === "upstream") return `upstream ${escapeLogText(output.command)}`;
  return output.type;
}

function play(input: SessionInput): Driver {
  const driver = new Driver(input.setup, false);
  for (const step of input.steps) {
    switch (step.t) {
      case "read":
        driver.read(step.data);
        break;
      case "clock":
        driver.clock(step.ms);
        break;
      case "answer":
        driver.answer(step.which, step.variant);
        break;
      case "learn":
        driver.learn(step.variant);
        break;
      case "hang-up":
        driver.hangUp();
        break;
      case "shutdown":
        driver.shutdown();
        break;
      case "banned":
        driver.banned();
        break;
    }
    if (driver.failure !== undefined) return driver;
  }
  driver.answerAll();
  driver.hangUp();
  driver.answerAll();
  driver.checkBounds();
  return driver;
}

const TLS = new Set(["tls"]);

/**
 * The client's bytes in the given reads, no clock, nobody hangs up; after each read every
 * question but the TLS handshake is answered (the handshake last: bytes after STARTTLS
 * count only once it is done, and a real client waits for it).
 */
function calm(setup: Setup, reads: readonly Uint8Array[], ignorePipelining: boolean): Driver {
  const driver = new Driver(setup, ignorePipelining);
  for (const bytes of reads) {
    driver.read(bytes);
    driver.answerAll(TLS);
    if (driver.failure !== undefined) return driver;
  }
  driver.answerAll();
  driver.checkBounds();
  return driver;
}

/** `ignorePipelining` false only to see that the comparison notices a difference where there must be one. */
export function compareSplits(input: SessionInput, ignorePipelining = true): Failure | undefined {
  const reads = input.steps.flatMap((s) => (s.t === "read" ? [s.data] : []));
  if (reads.length < 2) return undefined;
  const whole = calm(input.setup, [concatBytes(reads)], ignorePipelining);
  if (whole.failure !== undefined) return whole.failure;
  const split = calm(input.setup, reads, ignorePipelining);
  if (split.failure !== undefined) return split.failure;
  if (whole.replies === split.replies) return undefined;
  let at = 0;
  while (whole.replies[at] === split.replies[at]) at++;
  const from = whole.replies.lastIndexOf("\n", at - 1) + 1;
  return {
    invariant: "same replies whatever the split",
    detail: "the replies differ between the input fed whole and fed in its reads",
    evidence: `whole: ${escapeLogText(whole.replies.slice(from, from + 120))} / split: ${
      escapeLogText(split.replies.slice(from, from + 120))
    }`,
  };
}

function randomSetup(rng: Rng): Setup {
  return {
    relay: rng.chance(0.5),
    pipelining: rng.chance(0.5),
    greylist: rng.chance(0.3),
    observe: rng.chance(0.2),
    tls: rng.chance(0.5),
    ehloRefusal: rng.chance(0.1),
    strict: rng.chance(0.3),
    passed: rng.chance(0.2),
    allowed: rng.chance(0.05),
    maxLineLength: rng.weighted([[7, 1000], [2, 256], [1, 80]]),
    maxMessageSize: rng.weighted([[3, 1000], [1, 200], [1, 100_000]]),
    maxRecipients: rng.weighted([[3, 3], [1, 1], [1, 100]]),
    anyDomain: rng.chance(0.2),
    ownHosts: rng.chance(0.2),
    trap: rng.chance(0.1),
    dnsbl: rng.weighted<Setup["dnsbl"]>([[12, "none"], [1, "listed"], [1, "clean"], [1, "allowlisted"], [1, "error"]]),
    pacing: rng.chance(0.3),
  };
}

/**
 * Socket reads: whole, a line each, pipelined groups of lines, random cuts, or byte by byte;
 * views into one buffer (the session copies what it keeps).
 */
function splitReads(rng: Rng, pieces: readonly string[], strict: boolean): Uint8Array[] {
  const all = toBytes(pieces.join(""));
  const ends: number[] = [];
  let end = 0;
  for (const piece of pieces) ends.push(end += piece.length);
  // With the pipelining check enforced, most reads of several commands end the session at once.
  const how = strict && rng.chance(0.7)
    ? "lines"
    : rng.weighted<string>([[1, "whole"], [3, "lines"], [3, "groups"], [4, "cuts"], [1, "bytes"]]);
  const cuts: number[] = [];
  switch (how) {
    case "whole":
      break;
    case "lines":
      cuts.push(...ends);
      break;
    case "groups":
      for (let i = rng.between(0, 4); i < ends.length; i += rng.between(1, 5)) cuts.push(ends[i]);
      break;
    case "bytes":
      if (all.length <= 200) {
        for (let at = 1; at < all.length; at++) cuts.push(at);
        break;
      }
      // falls through: a long input byte by byte costs more than it finds
    default:
      for (let at = 0; at < all.length;) {
        cuts.push(at += rng.weighted([[3, rng.between(1, 8)], [3, rng.between(8, 64)], [1, rng.between(64, 2048)]]));
      }
  }
  const reads: Uint8Array[] = [];
  let from = 0;
  for (const cut of [...cuts, all.length]) {
    const to = Math.min(cut, all.length);
    if (to > from) reads.push(all.subarray(from, to));
    from = Math.max(from, to);
  }
  return reads;
}

/** Small steps; with `timeouts`, also jumps to around and past the command and DATA timeouts. */
function clockJump(rng: Rng, timeouts: boolean): number {
  const command = CONFIG.commandTimeoutMs;
  const data = CONFIG.dataTimeoutMs;
  if (!timeouts) return rng.between(0, 2000);
  return rng.weighted([
    [6, rng.between(0, 2000)],
    [2, 0],
    [2, command + rng.between(-1000, 1000)],
    [1, data + rng.between(-1000, 1000)],
    [1, rng.between(3_600_000, 86_400_000)],
  ]);
}

function event(rng: Rng, afterHangUp: boolean, timeouts: boolean): Step {
  return rng.weighted<Step>([
    [8, answer(rng.below(4), rng.next())],
    [3, clock(clockJump(rng, timeouts))],
    [1, learn(rng.next())],
    [afterHangUp ? 0 : 0.2, shutdown()],
    [afterHangUp ? 0 : 0.1, banned()],
  ]);
}

function generate(rng: Rng): SessionInput {
  const setup = randomSetup(rng);
  const pieces = clientInput(rng, setup.maxLineLength, noiseLevel(rng));
  const reads = splitReads(rng, pieces, setup.strict);
  const starttls = pieces.some((piece) => /STARTTLS\r?\n/i.test(piece));
  const timeouts = rng.chance(0.25);
  const hangUpAt = rng.chance(0.15) ? rng.below(reads.length + 1) : -1;
  const steps: Step[] = [];
  for (let i = 0; i < reads.length; i++) {
    if (i === hangUpAt) break;
    steps.push({ t: "read", data: reads[i] });
    // A real client waits for the handshake after STARTTLS: usually it is done before the next read.
    if (starttls && /STARTTLS\r?\n/i.test(bytesToText(reads[i], reads[i].length)) && rng.chance(0.8)) {
      steps.push(answer(0, rng.next()), answer(0, rng.next()));
    }
    while (rng.chance(0.45)) steps.push(event(rng, false, timeouts));
  }
  if (hangUpAt >= 0) {
    steps.push(hangUp());
    while (rng.chance(0.6)) steps.push(event(rng, true, timeouts));
  }
  return { setup, steps };
}

function* shrinkSteps(steps: readonly Step[]): Generator<Step[]> {
  for (let size = Math.max(1, steps.length >> 1); size >= 1; size >>= 1) {
    for (let at = 0; at + size <= steps.length; at += size) yield [...steps.slice(0, at), ...steps.slice(at + size)];
  }
  for (let i = 0; i + 1 < steps.length; i++) {
    const a = steps[i];
    const b = steps[i + 1];
    if (a.t === "read" && b.t === "read") {
      yield [...steps.slice(0, i), { t: "read", data: concatBytes([a.data, b.data]) }, ...steps.slice(i + 2)];
    }
  }
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i];
    const replace = (s: Step) => [...steps.slice(0, i), s, ...steps.slice(i + 1)];
    if (step.t === "read") {
      for (const bytes of shrinkBytes(bytesToText(step.data, step.data.length))) yield replace(read(bytes));
    } else if (step.t === "answer" && (step.which > 0 || step.variant > 15)) {
      if (step.which > 0) yield replace(answer(0, step.variant));
      for (let v = 0; v < 6 && v < step.variant; v++) yield replace(answer(step.which, v));
    } else if (step.t === "learn" && step.variant > 3) {
      for (let v = 0; v < 4; v++) yield replace(learn(v));
    } else if (step.t === "clock" && step.ms % 1000 !== 0) {
      yield replace(clock(Math.round(step.ms / 1000) * 1000));
    }
  }
}

/** A line at a time, then halves, then long runs of one byte shortened, then single bytes of short reads. */
function* shrinkBytes(bytes: string): Generator<string> {
  const lines = bytes.split(/(?<=\n)/);
  if (lines.length > 1) { for (let i = 0; i < lines.length; i++) yield [...lines.slice(0, i), ...lines.slice(i + 1)].join(""); }
  if (bytes.length > 1) {
    yield bytes.slice(0, bytes.length >> 1);
    yield bytes.slice(bytes.length >> 1);
  }
  for (const run of bytes.matchAll(/(.)\1{15,}/gs)) {
    const at = run.index!;
    const length = run[0].length;
    yield bytes.slice(0, at) + run[1].repeat(length >> 1) + bytes.slice(at + length);
    yield bytes.slice(0, at) + run[1].repeat(length - 1) + bytes.slice(at + length);
  }
  if (bytes.length <= 64) { for (let i = 0; i < bytes.length; i++) yield bytes.slice(0, i) + bytes.slice(i + 1); }
}

function* shrinkSetup(setup: Setup): Generator<Setup> {
  for (const key of Object.keys(DEFAULT_SETUP) as (keyof Setup)[]) {
    if (setup[key] !== DEFAULT_SETUP[key]) yield { ...setup, [key]: DEFAULT_SETUP[key] };
  }
}

function* shrinkInput(input: SessionInput): Generator<SessionInput> {
  for (const steps of shrinkSteps(input.steps)) yield { setup: input.setup, steps };
  for (const setup of shrinkSetup(input.setup)) yield { setup, steps: input.steps };
}

function formatStep(step: Step): string {
  switch (step.t) {
    case "read":
      return `read("${escapeLogText(bytesToText(step.data, step.data.length))}")`;
    case "clock":
      return `clock(${step.ms})`;
    case "answer":
      return `answer(${step.which}, ${step.variant})`;
    case "learn":
      return `learn(${step.variant})`;
    case "hang-up":
      return "hangUp()";
    case "shutdown":
      return "shutdown()";
    case "banned":
      return "banned()";
  }
}

/** As TypeScript a regression test can paste: only what differs from the default setup. */
export function describe(input: SessionInput): string {
  const changed = (Object.keys(DEFAULT_SETUP) as (keyof Setup)[]).filter((k) => input.setup[k] !== DEFAULT_SETUP[k]);
  const setup = changed.map((k) => `${k}: ${JSON.stringify(input.setup[k])}`).join(", ");
  return `{\n  setup: { ...DEFAULT_SETUP${setup === "" ? "" : `, ${setup}`} },\n  steps: [\n${
    input.steps.map((s) => `    ${formatStep(s)},\n`).join("")
  }  ],\n}`;
}

/** Runs one input with every invariant: the chaotic run, then whole against split. */
export function check(input: SessionInput): { failure: Failure | undefined; calls: number; seen: ReadonlySet<string> } {
  const driver = play(input);
  if (driver.failure !== undefined) return { failure: driver.failure, calls: driver.calls, seen: driver.seen };
  return { failure: compareSplits(input), calls: driver.calls, seen: driver.seen };
}

const MiB = 1024 * 1024;

/**
 * Issue 12 point 4, measured roughly by the process's resident memory (the session has no
 * public count of what it holds): a client that streams pipelined commands while its session
 * waits for the sender domain's DNS must not grow the process by what it sends.
 */
export function bufferProbe(megabytes = 128): Failure | undefined {
  const session = new Session(sessionConfig(DEFAULT_SETUP, false), CLIENT, 0);
  session.receive(toBytes("EHLO client.example\r\nMAIL FROM:<user@example.net>\r\n"), 0);
  const chunk = toBytes("NOOP\r\n".repeat(MiB / 6));
  const before = process.memoryUsage().rss;
  for (let i = 0; i < megabytes; i++) session.receive(chunk, 1);
  const grown = process.memoryUsage().rss - before;
  if (grown <= 64 * MiB) return undefined;
  return {
    invariant: "bounded buffering",
    detail: `the process grew by ${Math.round(grown / MiB)} MiB while a session waiting for DNS was sent ${megabytes} MiB of NOOP lines`,
  };
}

export function sessionTarget(): Target<SessionInput> {
  let calls = 0;
  let reached: ReadonlySet<string> = new Set();
  return {
    name: "session",
    generate,
    run(input) {
      calls = 0;
      reached = new Set();
      const result = check(input);
      calls = result.calls;
      reached = result.seen;
      return result.failure;
    },
    shrink: shrinkInput,
    describe,
    probes: [bufferProbe],
    get calls() {
      return calls;
    },
    get reached() {
      return reached;
    },
  };
}
