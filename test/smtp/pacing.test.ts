import assert from "node:assert/strict";
import { Session } from "../../src/smtp/session.ts";
import type { ClientInfo, GateFacts, Output, SessionConfig } from "../../src/smtp/types.ts";
import { test } from "../harness.ts";
import { CLIENT, STRICT } from "./transcript.ts";

const encoder = new TextEncoder();

/** Stutter on (500 ms) and a tarpit of 1 s per hit up to 3 s. */
const PACED: SessionConfig = {
  ...STRICT,
  checks: { ...STRICT.checks, stutter: true, stutterDelayMs: 500 },
  tarpit: { delayMs: 1000, maxMs: 3000 },
};
const OFFERED: SessionConfig = { ...PACED, pipelining: true };

type Paced = Extract<Output, { type: "paced-reply" }>;

/**
 * A client and its session, read by read: `send` is one socket read; `early` says it arrived
 * before the final line of the last paced reply was written (the I/O layer's count of final
 * lines lags the session's). Sender domains have an MX.
 */
function client(config: SessionConfig, info: ClientInfo = CLIENT, gate?: GateFacts) {
  const session = new Session(config, info, 0, gate);
  const outputs: Output[] = [];
  let finalsWritten = 0;
  const take = (out: Output[]) => {
    for (const o of out) {
      outputs.push(o);
      if (o.type === "lookup-mail-domain") take(session.resolved({ status: "ok", records: [`mx.${o.domain}`], ttl: 0 }, 1));
    }
  };
  return {
    session,
    outputs,
    send(text: string, early = false): Output[] {
      const from = outputs.length;
      if (!early) finalsWritten = session.facts.pacedReplies;
      take(session.receive(encoder.encode(text), 1, finalsWritten));
      return outputs.slice(from);
    },
    /** The last reply, paced or not. */
    last(): Output {
      return outputs.filter((o) => o.type === "reply" || o.type === "paced-reply").at(-1)!;
    },
  };
}

const SYNC = "554 5.5.0 mx.test.example Error: SMTP protocol synchronization; closing\r\n";

test("stutter: a new client's EHLO reply comes in two parts, the final line after the stutter delay", () => {
  const c = client(PACED);
  c.send("EHLO client.example\r\n");
  const reply = c.last() as Paced;
  assert.equal(reply.type, "paced-reply");
  assert.equal(
    reply.head,
    "250-mx.test.example Hello client.example [192.0.2.1]\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n",
  );
  assert.equal(reply.final, "250 ENHANCEDSTATUSCODES\r\n");
  assert.deepEqual([reply.stutterMs, reply.tarpitMs], [500, 0]);
});

test("stutter: single-line 250s to HELO, MAIL and RCPT get a first line of their own; other replies are left alone", () => {
  const c = client(PACED);
  c.send("HELO client.example\r\n");
  assert.deepEqual(c.last(), {
    type: "paced-reply",
    head: "250-mx.test.example\r\n",
    final: "250 mx.test.example Hello client.example [192.0.2.1]\r\n",
    stutterMs: 500,
    tarpitMs: 0,
  });
  c.send("MAIL FROM:<a@example.net>\r\n");
  assert.deepEqual(c.last(), {
    type: "paced-reply",
    head: "250-2.1.0 mx.test.example\r\n",
    final: "250 2.1.0 Ok\r\n",
    stutterMs: 500,
    tarpitMs: 0,
  });
  c.send("RCPT TO:<b@example.org>\r\n");
  assert.equal((c.last() as Paced).final, "250 2.1.5 Ok\r\n");
  c.send("NOOP\r\n");
  assert.deepEqual(c.last(), { type: "reply", text: "250 2.0.0 Ok\r\n" });
  c.send("RCPT TO:<b@elsewhere.example>\r\n");
  assert.equal(c.last().type, "reply", "a refusal is not stuttered");
  c.send("DATA\r\n");
  assert.deepEqual(c.last(), { type: "reply", text: "354 End data with <CR><LF>.<CR><LF>\r\n" });
  assert.equal(c.session.facts.findings.length, 0);
});

test("stutter: a command that arrives before the final line of the EHLO reply is a pipelining violation: 554, close, not acted on", () => {
  const c = client(PACED);
  c.send("EHLO bot.example\r\n");
  const out = c.send("MAIL FROM:<a@example.net>\r\n", true);
  assert.deepEqual(out.filter((o) => o.type !== "refused"), [{ type: "reply", text: SYNC }, { type: "close" }]);
  assert.equal(c.session.facts.transactions, 0);
  assert.deepEqual(c.session.facts.findings.map((f) => [f.check, f.action, f.evidence]), [["pipelining", "enforce", {
    command: "EHLO",
    offered: false,
    ahead: "MAIL FROM:<a@example.net>",
    before_final_line: true,
  }]]);
});

test("stutter: the same command after the final line was written is fine; so is a line begun early and finished after", () => {
  const c = client(PACED);
  c.send("EHLO client.example\r\n");
  c.send("MAIL FROM:<a@example.net>\r\n");
  assert.equal(c.session.facts.transactions, 1);
  const d = client(PACED);
  d.send("EHLO bot.example\r\n");
  d.send("MAIL FR", true);
  d.send("OM:<a@example.net>\r\n");
  assert.equal(d.session.facts.findings[0]?.evidence.before_final_line, true, "its first bytes came before the final line");
  assert.ok(d.session.closed);
});

test("stutter with PIPELINING offered: RCPT and DATA early behind MAIL and RCPT are a group (RFC 2920); anything early behind EHLO or DATA is not", () => {
  const c = client(OFFERED);
  c.send("EHLO client.example\r\n");
  c.send("MAIL FROM:<a@example.net>\r\n");
  c.send("RCPT TO:<b@example.org>\r\n", true);
  c.send("DATA\r\n", true);
  assert.equal(c.last().type, "reply");
  assert.match((c.last() as { text: string }).text, /^354 /);
  assert.equal(c.session.facts.findings.length, 0);
  const d = client(OFFERED);
  d.send("EHLO bot.example\r\n");
  d.send("MAIL FROM:<a@example.net>\r\n", true);
  assert.deepEqual(d.session.facts.findings.map((f) => f.evidence), [{
    command: "EHLO",
    offered: true,
    ahead: "MAIL FROM:<a@example.net>",
    before_final_line: true,
  }]);
});

test("stutter: never for a passed or an allowed client, nor with MXSCREEN_STUTTER=false", () => {
  for (
    const [config, info] of [[PACED, { ...CLIENT, passed: true }], [PACED, { ...CLIENT, allowed: true }], [{
      ...PACED,
      checks: { ...PACED.checks, stutter: false },
    }, CLIENT]] as const
  ) {
    const c = client(config, info);
    c.send("EHLO client.example\r\n");
    c.send("MAIL FROM:<a@example.net>\r\n", true);
    assert.ok(c.outputs.every((o) => o.type !== "paced-reply"), JSON.stringify(info));
    assert.equal(c.session.facts.findings.length, 0, "bytes said to be early mean nothing without a paced reply");
  }
});

test("tarpit: every reply to a client with hits waits, 1 s more per hit, whatever the action, up to MXSCREEN_TARPIT_MAX", () => {
  const config: SessionConfig = { ...PACED, actions: { "helo-syntax": "ignore", "helo-schizo": "ignore" } };
  const c = client(config, { ...CLIENT, passed: true });
  c.send("HELO localhost\r\n");
  assert.deepEqual(c.last(), {
    type: "paced-reply",
    head: "",
    final: "250 mx.test.example Hello localhost [192.0.2.1]\r\n",
    stutterMs: 0,
    tarpitMs: 1000,
  });
  c.send("HELO other\r\n");
  assert.equal((c.last() as Paced).tarpitMs, 3000, "two more hits: helo-schizo and helo-syntax");
  c.send("NOOP\r\n");
  assert.equal((c.last() as Paced).tarpitMs, 3000, "capped");
  c.send("MAIL FROM:<a@example.net>\r\n", true);
  assert.equal(c.session.facts.findings.at(-1)?.check, "pipelining", "a command sent before the tarpitted reply's end is caught too");
});

test("tarpit: a missing reverse name or a greylisting is no misbehaviour; the gate can ask for hits of its own (tarpitHits)", () => {
  const c = client(PACED, { ...CLIENT, passed: true });
  c.session.start();
  c.session.learnReverseDns({ status: "none" });
  c.send("EHLO client.example\r\n");
  assert.equal(c.last().type, "reply");
  const d = client(PACED, { ...CLIENT, passed: true }, { dnsbl: [], tarpitHits: 2 });
  d.send("EHLO client.example\r\n");
  assert.equal((d.last() as Paced).tarpitMs, 2000);
  assert.equal((d.last() as Paced).final, "250 ENHANCEDSTATUSCODES\r\n");
});

test("stutter in relay mode: the upstream's own answer to MAIL and RCPT is the one paced, its text kept", () => {
  const session = new Session({ ...PACED, relay: true }, CLIENT, 0);
  session.receive(encoder.encode("EHLO client.example\r\n"), 1);
  const asked = session.receive(encoder.encode("MAIL FROM:<>\r\n"), 1);
  assert.deepEqual(asked.at(-1), { type: "upstream", command: "MAIL FROM:<>" });
  assert.deepEqual(session.upstreamReplied({ code: 250, text: "250 2.1.0 Sender ok\r\n" }, 1).at(-1), {
    type: "paced-reply",
    head: "250-2.1.0 mx.test.example\r\n",
    final: "250 2.1.0 Sender ok\r\n",
    stutterMs: 500,
    tarpitMs: 0,
  });
  session.receive(encoder.encode("RCPT TO:<b@example.org>\r\n"), 1);
  const answered = session.upstreamReplied({ code: 250, text: "250-2.1.5 first\r\n250 2.1.5 Recipient ok\r\n" }, 1).at(-1) as Paced;
  assert.deepEqual([answered.head, answered.final], ["250-2.1.5 first\r\n", "250 2.1.5 Recipient ok\r\n"]);
});
