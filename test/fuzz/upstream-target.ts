import { type UpstreamIdentity, UpstreamMachine, type UpstreamOutput, type UpstreamTls } from "../../src/delivery/upstream-machine.ts";
import type { Failure, Target } from "./engine.ts";
import type { Rng } from "./rng.ts";
import { upstreamReply } from "./smtp-replies.ts";

/** What the glue and the upstream may do to the machine, in the order they do it. */
export type UpstreamStep =
  | { readonly do: "ask"; readonly line: string }
  | { readonly do: "reset" }
  | { readonly do: "data"; readonly text: string }
  | { readonly do: "end-data" }
  | { readonly do: "connected" }
  /** Bytes from the upstream, as one read. */
  | { readonly do: "received"; readonly text: string }
  | { readonly do: "lost" }
  | { readonly do: "clock"; readonly ms: number }
  | { readonly do: "quit" }
  | { readonly do: "abort" }
  /** The pool hands the connection to the next client's session, when the machine says it can be. */
  | { readonly do: "introduce" }
  /** The TLS handshake after STARTTLS ended, well or not (told whatever the machine asked). */
  | { readonly do: "tls"; readonly ok: boolean };

export interface UpstreamInput {
  readonly identity: UpstreamIdentity;
  readonly tls: UpstreamTls;
  readonly steps: readonly UpstreamStep[];
}

const IDENTITIES: readonly UpstreamIdentity[] = ["xclient", "proxy", "none", "auto"];
const TLS_MODES: readonly UpstreamTls[] = ["may", "verify", "off"];
const COMMANDS = ["MAIL FROM:<a@example.net>", "RCPT TO:<b@example.org>", "DATA", "NOOP"];
const TIMEOUT_MS = 1_000;
const DATA_END_TIMEOUT_MS = 600_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder("latin1");
/** The one write that is not a line: the PROXY v2 header (HAProxy's protocol, section 2.2). */
const PROXY_V2_SIGNATURE = "\r\n\r\n\x00\r\nQUIT\n";

/** Bytes an upstream sends: mostly replies (greeting, EHLO with or without XCLIENT, answers), split anywhere, sometimes nonsense. */
function upstreamBytes(rng: Rng): string {
  const kind = rng.weighted<string>([
    [3, "220 mta.example ESMTP\r\n"],
    [3, "250-mta.example\r\n250-XCLIENT ADDR PORT NAME HELO PROTO\r\n250 PIPELINING\r\n"],
    [2, "250 mta.example\r\n"],
    [2, "250-mta.example\r\n250-STARTTLS\r\n250 XCLIENT ADDR PORT NAME HELO PROTO\r\n"],
    [8, ""],
    [1, "HTTP/1.1 400 Bad Request\r\n"],
    [1, "\x00\xff\r\n"],
    [1, "2"],
    [1, "250-"],
  ]);
  return kind === "" ? upstreamReply(rng.pick(COMMANDS), rng.next() * 0x1_0000_0000 >>> 0).text : kind;
}

function step(rng: Rng): UpstreamStep {
  return rng.weighted<() => UpstreamStep>([
    [4, () => ({ do: "ask", line: rng.pick(COMMANDS) })],
    [1, () => ({ do: "reset" })],
    [2, () => ({ do: "data", text: rng.chance(0.5) ? ".leading dot\r\n" : "line\r\n" })],
    [1, () => ({ do: "end-data" })],
    [2, () => ({ do: "connected" })],
    [8, () => {
      const text = upstreamBytes(rng);
      // A read may end anywhere inside what the upstream sent.
      return { do: "received", text: rng.chance(0.3) ? text.slice(0, rng.below(text.length + 1)) : text };
    }],
    [1, () => ({ do: "lost" })],
    [2, () => ({ do: "clock", ms: rng.pick([10, TIMEOUT_MS - 1, TIMEOUT_MS + 1, DATA_END_TIMEOUT_MS + 1]) })],
    [1, () => ({ do: "quit" })],
    [1, () => ({ do: "abort" })],
    [1, () => ({ do: "introduce" })],
    [2, () => ({ do: "tls", ok: rng.chance(0.8) })],
  ])();
}

/** Plays `input` and checks the machine's contract: one answer per question, in order, nothing after the close, no throw. */
export function checkUpstream(input: UpstreamInput): { failure: Failure | undefined; calls: number } {
  let now = 0;
  const machine = new UpstreamMachine(
    {
      name: "mta.test:25",
      identity: input.identity,
      timeoutMs: TIMEOUT_MS,
      dataEndTimeoutMs: DATA_END_TIMEOUT_MS,
      hostname: "mx.test",
      tls: input.tls,
    },
    {
      address: "192.0.2.7",
      port: 4000,
      local: { address: "198.51.100.25", port: 25 },
      helo: "client.example",
      name: undefined,
      protocol: "ESMTP",
    },
    now,
  );
  let questions = 0;
  let answers = 0;
  let closes = 0;
  let introductions = 0;
  let reconnects = 0;
  let tlsFailures = 0;
  let calls = 0;
  let failure: Failure | undefined;
  const take = (outputs: UpstreamOutput[], what: string) => {
    calls++;
    for (const output of outputs) {
      if (failure) return;
      // A handed-over connection replaced: the close before it was of the old connection, not the machine's end.
      if (output.type === "reconnect") {
        reconnects++;
        if (closes !== 1 || reconnects > introductions + tlsFailures) {
          failure = {
            invariant: "reconnect only after a handed-over connection or a TLS handshake (may) failed and closed",
            detail: `at ${what}`,
          };
        }
        closes = 0;
        continue;
      }
      if (closes > 0 && output.type !== "answer") {
        failure = { invariant: "nothing after close", detail: `${output.type} after the close, at ${what}` };
      }
      if (output.type === "close") closes++;
      if (output.type === "answer") answers++;
      const text = output.type === "write" ? decoder.decode(output.bytes) : "";
      if (output.type === "write" && !text.endsWith("\r\n") && !text.startsWith(PROXY_V2_SIGNATURE)) {
        failure = {
          invariant: "whole lines written",
          detail: `a write that does not end in CRLF at ${what}`,
          evidence: JSON.stringify(text),
        };
      }
    }
    if (!failure && answers > questions) {
      failure = { invariant: "one answer per question", detail: `more answers than questions at ${what}` };
    }
    if (!failure && machine.failed === undefined && answers < questions && machine.deadline === Infinity) {
      failure = { invariant: "a question waits with a deadline", detail: `an open question and no deadline at ${what}` };
    }
  };
  for (const s of input.steps) {
    if (failure) break;
    switch (s.do) {
      case "ask":
        questions++;
        take(machine.ask(s.line, now), s.do);
        break;
      case "end-data":
        questions++;
        take(machine.endData(now), s.do);
        break;
      case "reset":
        take(machine.reset(now), s.do);
        break;
      case "data":
        take(machine.data(encoder.encode(s.text)), s.do);
        break;
      case "connected":
        take(machine.connected(now), s.do);
        break;
      case "received":
        take(machine.received(Uint8Array.from(s.text, (c) => c.charCodeAt(0)), now), s.do);
        break;
      case "lost":
        take(machine.lost("connection reset", now), s.do);
        break;
      case "clock":
        now += s.ms;
        take(machine.tick(now), s.do);
        break;
      case "quit":
        take(machine.quit(), s.do);
        break;
      case "abort":
        take(machine.abort(), s.do);
        break;
      case "tls":
        if (!s.ok && input.tls === "may") tlsFailures++;
        take(machine.tlsStarted(s.ok ? undefined : "handshake failed", now), s.do);
        break;
      case "introduce":
        if (machine.reusable) {
          introductions++;
          take(
            machine.introduce({
              address: "203.0.113.9",
              port: 5000,
              local: undefined,
              helo: "next.example",
              name: "next.example",
              protocol: "ESMTP",
            }, now),
            s.do,
          );
        }
        break;
    }
  }
  // However it went, the connection ends: every question must then have had its answer.
  // (A handed-over connection lost while it is introduced is replaced: then the new one is lost too.)
  for (let lost = 0; lost < 2 && !failure && machine.failed === undefined; lost++) {
    take(machine.lost("closed the connection", now), "the end");
  }
  if (!failure && answers !== questions) {
    failure = { invariant: "one answer per question", detail: `${questions} questions, ${answers} answers at the end` };
  }
  if (!failure && closes !== 1) failure = { invariant: "closed once", detail: `${closes} closes` };
  return { failure, calls };
}

export function upstreamTarget(): Target<UpstreamInput> {
  let calls = 0;
  return {
    name: "upstream",
    generate: (rng) => ({
      identity: rng.pick(IDENTITIES),
      tls: rng.pick(TLS_MODES),
      steps: Array.from({ length: rng.between(1, 30) }, () => step(rng)),
    }),
    run: (input) => {
      const result = checkUpstream(input);
      calls = result.calls;
      return result.failure;
    },
    *shrink(input) {
      for (let i = 0; i < input.steps.length; i++) yield { ...input, steps: [...input.steps.slice(0, i), ...input.steps.slice(i + 1)] };
    },
    describe: (input) => JSON.stringify(input, null, 2),
    get calls() {
      return calls;
    },
  };
}
