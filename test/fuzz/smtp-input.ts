import type { Rng } from "./rng.ts";

/**
 * What an SMTP client may send, valid and broken, as a list of pieces (mostly one line each,
 * with its terminator) in latin1: one character per byte, so NUL, 8-bit bytes and raw UTF-8
 * pass through unchanged. Mostly a conversation in the right order, mutated, with the odd
 * random, over-long or non-SMTP line: a conversation gets deep into the state machine, the
 * mutations find the edges.
 */
/** What stays the same through one conversation. */
interface Style {
  readonly maxLineLength: number;
  /** The name this client normally greets with: a client that changes it is a different test (helo-schizo). */
  readonly helo: string;
}

/**
 * How far an input strays from a clean conversation, per choice: near 0 most inputs get deep
 * into transactions and messages, near 1 they mostly probe the edges early.
 */
export function noiseLevel(rng: Rng): number {
  return rng.weighted([[4, 0.005], [3, 0.05], [3, 0.25]]);
}

const DOMAINS = [
  "example.org",
  "EXAMPLE.ORG",
  "example.org.",
  "example.net",
  "sub.example.org",
  "mx.test.example",
  "[192.0.2.1]",
  "[IPv6:2001:db8::1]",
  "[300.1.1.1]",
  "localhost",
  "a",
  "-bad-.example",
  `${"x".repeat(64)}.example`,
  "ex ample.org",
  "exa\x00mple.org",
  "ex\xc3\xa9.org",
  "\xff\xfe.example",
  "",
];

const LOCAL_PARTS = [
  "user",
  "postmaster",
  "Abuse",
  "trap",
  '"quoted user"',
  '"a\\"b"',
  "a.b",
  ".bad",
  "x".repeat(65),
  "\xc3\xbc",
  "user+tag",
  "a@b",
];

/** QUIT is left to the conversation's own order: a random one would end most inputs early. */
const VERBS = [
  "HELO",
  "EHLO",
  "MAIL",
  "RCPT",
  "DATA",
  "RSET",
  "NOOP",
  "VRFY",
  "HELP",
  "STARTTLS",
  "EXPN",
  "AUTH",
  "BDAT",
  "ETRN",
  "TURN",
  "XCLIENT",
  "XFORWARD",
  "LHLO",
];

const NON_SMTP = [
  "GET / HTTP/1.1",
  "POST /submit HTTP/1.0",
  "Host: mx.test.example",
  "CONNECT mx.test.example:25 HTTP/1.1",
  "USER root",
  "PASS x",
  "SSH-2.0-OpenSSH_9.6",
  "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
  "PROXY TCP4 192.0.2.9 192.0.2.1 4000 25",
  "\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a",
];

const PARAMS = [
  "SIZE=100",
  "SIZE=0",
  "SIZE=999999999999999",
  "SIZE=99999999999999999999",
  "SIZE=-1",
  "SIZE=abc",
  "SIZE=",
  "SIZE",
  "BODY=8BITMIME",
  "BODY=7bit",
  "BODY=BINARYMIME",
  "SMTPUTF8",
  "AUTH=<>",
  "RET=HDRS",
  "ENVID=abc",
  "NOTIFY=NEVER",
  "ORCPT=rfc822;a@example.org",
  "=x",
  "X-\xc3\xa9=1",
  `X-${"K".repeat(600)}=1`,
];

function terminator(rng: Rng, noise: number): string {
  if (!rng.chance(noise)) return "\r\n";
  return rng.weighted<string>([
    [40, "\r\n"],
    [3, "\n"],
    [2, "\r"],
    [1, "\r\r\n"],
    [1, "\n\r"],
    [1, ""],
  ]);
}

function latin1(rng: Rng, length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) out += String.fromCharCode(rng.below(256));
  return out;
}

/** Mostly lower-case letters, some dots, dashes and other printable ASCII. */
function word(rng: Rng, length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) {
    const r = rng.below(8);
    out += String.fromCharCode(r < 5 ? 0x61 + rng.below(26) : r === 5 ? 0x2e : r === 6 ? 0x2d : rng.between(0x21, 0x7e));
  }
  return out;
}

function mailbox(rng: Rng): string {
  return `${rng.pick(LOCAL_PARTS)}@${rng.pick(DOMAINS)}`;
}

/** The clean choice, or with probability `noise` one of the others (built only then). */
function mutate<T>(rng: Rng, noise: number, clean: T, others: () => readonly (readonly [number, T])[]): T {
  return rng.chance(noise) ? rng.weighted(others()) : clean;
}

function cleanMailbox(rng: Rng): string {
  return `${rng.pick(["user", "postmaster", "someone", "trap"])}@${rng.pick(["example.org", "example.org", "example.net", "EXAMPLE.ORG"])}`;
}

function path(rng: Rng, noise: number): string {
  const m = mutate(rng, noise, cleanMailbox(rng), () => [[1, mailbox(rng)]]);
  return mutate(rng, noise, rng.chance(0.1) ? "<>" : `<${m}>`, () => [
    [4, "<>"],
    [3, m],
    [2, `<@relay.example,@r2.example:${m}>`],
    [1, `<${m}`],
    [1, `${m}>`],
    [1, `< ${m}>`],
    [1, `<${rng.pick(["postmaster", "abuse", "Postmaster", "user"])}>`],
    [1, `<<${m}>>`],
    [1, ""],
    [1, `<${m}>x`],
  ]);
}

function params(rng: Rng, noise: number): string {
  let out = rng.chance(0.2) ? rng.pick([" SIZE=100", " BODY=8BITMIME", " SIZE=20 BODY=7BIT"]) : "";
  if (!rng.chance(noise)) return out;
  const n = rng.between(1, 3);
  for (let i = 0; i < n; i++) out += `${rng.chance(0.9) ? " " : "  "}${rng.pick(PARAMS)}`;
  return out;
}

function heloArgument(rng: Rng, noise: number, limits: Style): string {
  return mutate(rng, noise, limits.helo, () => [
    [4, rng.pick(["client.example", "mail.example.net", "EXAMPLE.ORG"])],
    [4, rng.pick(["localhost", "a", "mx.test.example"])],
    [3, rng.pick(["[192.0.2.1]", "[IPv6:2001:db8::1]", "[192.0.2.300]", "192.0.2.1", "[]"])],
    [2, ""],
    [1, "two words"],
    [1, " leading.space"],
    [1, `${"h".repeat(rng.between(60, limits.maxLineLength))}.example`],
    [1, "h\xc3\xa9llo.example"],
    [1, "nul\x00.example"],
    [1, "tab\there"],
    [1, latin1(rng, rng.between(1, 20))],
    [1, word(rng, rng.between(1, 30))],
  ]);
}

function verbCase(rng: Rng, noise: number, verb: string): string {
  return mutate(rng, noise, verb, () => [[2, verb.toLowerCase()], [1, verb[0] + verb.slice(1).toLowerCase()]]);
}

function command(rng: Rng, noise: number, verb: string, limits: Style): string {
  const v = verbCase(rng, noise, verb);
  switch (verb) {
    case "HELO":
    case "EHLO":
      return `${v}${mutate(rng, noise, " ", () => [[1, ""], [1, "  "], [1, "\t"]])}${heloArgument(rng, noise, limits)}`;
    case "MAIL":
      return `${v} ${mutate(rng, noise, "FROM:", () => [[2, "from:"], [1, "FROM :"], [1, "FROM: "], [1, "TO:"], [1, ""]])}${
        path(rng, noise)
      }${params(rng, noise)}`;
    case "RCPT":
      return `${v} ${mutate(rng, noise, "TO:", () => [[2, "to:"], [1, "TO: "], [1, "FROM:"], [1, ""]])}${path(rng, noise)}${
        rng.chance(0.1) ? params(rng, noise) : ""
      }`;
    case "DATA":
    case "RSET":
    case "QUIT":
    case "STARTTLS":
    case "NOOP":
      return mutate(rng, noise, v, () => [[1, `${v} ${word(rng, rng.between(1, 8))}`], [1, `${v} `]]);
    case "VRFY":
    case "EXPN":
      return rng.chance(0.8) ? `${v} ${mailbox(rng)}` : v;
    case "AUTH":
      return `${v} ${rng.pick(["PLAIN", "LOGIN", "PLAIN AHVzZXIAcGFzcw=="])}`;
    case "BDAT":
      return `${v} ${rng.between(0, 20)}${rng.chance(0.5) ? " LAST" : ""}`;
    default:
      return `${v} ${word(rng, rng.between(0, 12))}`;
  }
}

function dataLine(rng: Rng, noise: number, limits: Style): string {
  const clean = rng.pick([
    "Subject: hello",
    "From: <a@example.net>",
    "",
    "body text",
    "Received: from mx.test.example by relay.example",
    " folded continuation",
    "..stuffed",
    "..",
  ]);
  return mutate(rng, noise * 2, clean, () => [
    [3, "."],
    [3, `.${word(rng, rng.between(0, 10))}`],
    [2, ".."],
    [1, "\r.\r"],
    [1, ".\r"],
    [1, "MAIL FROM:<smuggled@example.net>"],
    [1, `${"x".repeat(limits.maxLineLength - rng.between(0, 4))}`],
    [1, `${"y".repeat(rng.between(limits.maxLineLength, limits.maxLineLength * 4))}`],
    [2, latin1(rng, rng.between(0, 40))],
    [1, "caf\xc3\xa9 \x00 \xff"],
  ]);
}

function dataBody(rng: Rng, noise: number, limits: Style): string[] {
  const pieces: string[] = [];
  const lines = rng.weighted<number>([[3, 0], [8, rng.between(1, 5)], [2, rng.between(5, 40)], [1, rng.between(40, 150)]]);
  for (let i = 0; i < lines; i++) pieces.push(dataLine(rng, noise, limits) + terminator(rng, noise));
  pieces.push(mutate(rng, noise, ".\r\n", () => [[2, "\n.\n"], [1, "\r.\r"], [1, ".\n"], [2, ""], [1, "\r\n.\r\n"]]));
  return pieces;
}

/** One conversation step: a command (and a message, after DATA) or a piece of noise. */
function step(rng: Rng, noise: number, next: string, limits: Style, pieces: string[]): void {
  const kind = mutate(
    rng,
    noise / 2,
    "expected",
    () => [[8, "other verb"], [3, "random"], [2, "long"], [2, "non-smtp"], [1, "empty"], [1, "huge"]],
  );
  switch (kind) {
    case "expected":
      pieces.push(command(rng, noise, next, limits) + terminator(rng, noise));
      if (next === "DATA") pieces.push(...dataBody(rng, noise, limits));
      return;
    case "other verb":
      pieces.push(command(rng, noise, rng.pick(VERBS), limits) + terminator(rng, noise));
      return;
    case "random":
      pieces.push(latin1(rng, rng.between(1, 64)) + (rng.chance(0.5) ? "\r\n" : ""));
      return;
    case "long":
      pieces.push(`${rng.pick(VERBS)} ${"z".repeat(limits.maxLineLength - rng.between(-8, 8))}${terminator(rng, noise)}`);
      return;
    case "non-smtp":
      pieces.push(rng.pick(NON_SMTP) + terminator(rng, noise));
      return;
    case "empty":
      pieces.push(terminator(rng, noise));
      return;
    case "huge":
      pieces.push("w".repeat(rng.between(limits.maxLineLength * 2, limits.maxLineLength * 8)) + (rng.chance(0.5) ? "\r\n" : ""));
      return;
  }
}

/** The order a well-behaved client follows; the walk wanders off it by the mutations in `step`. */
const NEXT: Readonly<Record<string, readonly string[]>> = {
  start: ["EHLO", "EHLO", "EHLO", "EHLO", "EHLO", "HELO", "HELO", "STARTTLS"],
  HELO: ["MAIL", "MAIL", "MAIL", "MAIL", "STARTTLS", "RSET", "NOOP", "HELO"],
  EHLO: ["MAIL", "MAIL", "MAIL", "MAIL", "MAIL", "STARTTLS", "RSET", "NOOP", "EHLO", "VRFY"],
  STARTTLS: ["EHLO", "EHLO", "HELO"],
  MAIL: ["RCPT", "RCPT", "RCPT", "RCPT", "RSET", "DATA", "MAIL"],
  RCPT: ["RCPT", "DATA", "DATA", "DATA", "RSET", "MAIL"],
  DATA: ["MAIL", "MAIL", "MAIL", "QUIT", "RSET", "EHLO", "NOOP"],
  RSET: ["MAIL", "MAIL", "EHLO", "QUIT", "RSET"],
  NOOP: ["MAIL", "MAIL", "EHLO", "QUIT", "NOOP"],
  VRFY: ["MAIL"],
  QUIT: ["EHLO", "MAIL", "NOOP"],
};

/** `noise` from `noiseLevel`: the probability of each mutation. */
export function clientInput(rng: Rng, maxLineLength: number, noise: number): string[] {
  const limits: Style = { maxLineLength, helo: rng.pick(["client.example", "mail.example.net", "EXAMPLE.ORG"]) };
  const pieces: string[] = [];
  const steps = rng.weighted<number>([[2, rng.between(1, 3)], [6, rng.between(3, 12)], [2, rng.between(12, 40)], [1, rng.between(40, 80)]]);
  let at = "start";
  for (let i = 0; i < steps; i++) {
    const next = rng.pick(NEXT[at]);
    step(rng, noise, next, limits, pieces);
    at = next;
  }
  return pieces;
}
