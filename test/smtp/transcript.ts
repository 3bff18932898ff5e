import { loadConfig } from "../../src/config/config.ts";
import { Session } from "../../src/smtp/session.ts";
import type { DnsAnswer } from "../../src/dns/types.ts";
import type { ClientInfo, DeliveryResult, GateFacts, Output, SessionConfig } from "../../src/smtp/types.ts";

export const CONFIG: SessionConfig = {
  hostname: "mx.test.example",
  maxMessageSize: 1000,
  maxLineLength: 1000,
  maxRecipients: 3,
  commandTimeoutMs: 300_000,
  dataTimeoutMs: 600_000,
  stressTimeoutMs: 10_000,
  pipelining: false,
  bareCr: "reject",
  acceptDomains: ["example.org"],
  tls: false,
  relay: false,
  // Every knob at its default, as an operator who set none gets them; the tests' own values on top.
  // Stutter off: its pauses have transcripts of their own (test/smtp/pacing.test.ts).
  checks: { ...loadConfig({}, { hostname: "mx.test.example", cpus: 1, openFiles: 1024 }).checks, maxTransactions: 50, stutter: false },
  // A transcript fed whole arrives as one read, which makes every command but the last a
  // pipelined one: the pipelining check has transcripts of its own, fed read by read.
  actions: { pipelining: "ignore" },
  observe: false,
  // No tarpit either, for the same reason.
  tarpit: { delayMs: 0, maxMs: 0 },
};

/** The same settings with every check at its default action. */
export const STRICT: SessionConfig = { ...CONFIG, actions: {} };

export const CLIENT = { address: "192.0.2.1", port: 40000, passed: false, allowed: false };

export interface Transcript {
  /** What the client sends, CRLF added to each line. */
  readonly client: string;
  /** What the server answers, CRLF added to each line. */
  readonly server: string;
}

/** Reads `C:` / `S:` lines (RFC-style fixtures) into what each side sends. */
export function transcript(text: string): Transcript {
  let client = "";
  let server = "";
  for (const raw of text.split("\n")) {
    const line = raw.replace(/^\s+/, "");
    if (line.startsWith("C: ")) client += `${line.slice(3)}\r\n`;
    else if (line.startsWith("S: ")) server += `${line.slice(3)}\r\n`;
    else if (line === "C:") client += "\r\n";
  }
  return { client, server };
}

export interface Played {
  readonly replies: string;
  readonly outputs: Output[];
  readonly messages: string[];
  readonly session: Session;
}

/**
 * Feeds `input` in the given chunks, delivers every message with `result` and answers every
 * sender domain lookup with `mailDomain` (by default: it has an MX). The outputs of
 * a sans-I/O session do not depend on how its input was split (without PIPELINING checks).
 */
export function play(
  chunks: Uint8Array[],
  config: SessionConfig = CONFIG,
  result: (n: number) => DeliveryResult = (n) => ({ ok: true, id: `Q${n}` }),
  client: ClientInfo = CLIENT,
  mailDomain: (domain: string) => DnsAnswer = (domain) => ({ status: "ok", records: [`mx.${domain}`], ttl: 0 }),
  gate: GateFacts = { dnsbl: [] },
): Played {
  const session = new Session(config, client, 0, gate);
  const outputs: Output[] = [];
  const messages: string[] = [];
  let current: number[] | undefined;
  const decoder = new TextDecoder();
  const handle = (out: Output[]) => {
    for (const o of out) {
      outputs.push(o);
      if (o.type === "message-begin") current = [];
      if (o.type === "message-data") current?.push(...o.bytes);
      if (o.type === "message-abort") current = undefined;
      if (o.type === "lookup-mail-domain") handle(session.resolved(mailDomain(o.domain), 1));
      if (o.type === "message-end") {
        messages.push(decoder.decode(new Uint8Array(current!)));
        current = undefined;
        handle(session.delivered(result(messages.length), 1));
      }
    }
  };
  for (const chunk of chunks) handle(session.receive(chunk, 1));
  const replies = outputs.map((o) => o.type === "reply" ? o.text : o.type === "paced-reply" ? o.head + o.final : "").join("");
  return { replies, outputs, messages, session };
}

const encoder = new TextEncoder();

/** One read per client line: a client that waits for each reply before it sends the next command. */
export function lineByLine(text: string): Uint8Array[] {
  return text.split(/(?<=\n)/).filter((line) => line !== "").map((line) => encoder.encode(line));
}

export function whole(text: string): Uint8Array[] {
  return [encoder.encode(text)];
}

export function byteByByte(text: string): Uint8Array[] {
  return [...encoder.encode(text)].map((b) => Uint8Array.of(b));
}

/** Every way of cutting the input in two. */
export function everySplit(text: string): Uint8Array[][] {
  const bytes = encoder.encode(text);
  return Array.from({ length: bytes.length + 1 }, (_, i) => [bytes.slice(0, i), bytes.slice(i)]);
}
