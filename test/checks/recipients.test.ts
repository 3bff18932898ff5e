import assert from "node:assert/strict";
import { test } from "../harness.ts";
import { Session } from "../../src/smtp/session.ts";
import type { Output } from "../../src/smtp/types.ts";
import { CLIENT, lineByLine, play, STRICT, transcript } from "../smtp/transcript.ts";

const START = "HELO client.example\r\nMAIL FROM:<a@example.net>\r\n";

test("dictionary: five unknown recipients are refused one by one, the sixth gets 421, close, and the action ban", () => {
  const guesses = ["a", "b", "c", "d", "e", "f", "g"].map((name) => `RCPT TO:<${name}@elsewhere.example>\r\n`).join("");
  const { replies, session } = play(lineByLine(START + guesses), STRICT);
  const lines = replies.trimEnd().split("\r\n");
  assert.equal(lines.filter((l) => l.startsWith("554 5.7.1")).length, 5);
  assert.equal(lines.at(-1), "421 4.7.0 mx.test.example Error: too many unknown recipients; closing");
  assert.deepEqual(session.facts.findings.map((f) => [f.tag, f.action, f.evidence.bad_recipients, f.evidence.last]), [[
    "DICTIONARY",
    "ban",
    6,
    "f@elsewhere.example",
  ]]);
  assert.equal(session.facts.tempfails, 1, "the five 554s are no 4xx to retry after; the 421 answering the sixth RCPT is");
});

test("dictionary: known recipients do not count, and the limit follows MXSCREEN_MAX_BAD_RCPT", () => {
  const known = play(lineByLine(START + "RCPT TO:<x@example.org>\r\n".repeat(3)), STRICT);
  assert.equal(known.session.facts.findings.length, 0);
  const config = { ...STRICT, checks: { ...STRICT.checks, maxBadRecipients: 1 } };
  const { replies } = play(lineByLine(START + "RCPT TO:<x@elsewhere.example>\r\nRCPT TO:<y@elsewhere.example>\r\n"), config);
  assert.match(replies, /554 5\.7\.1 [^\n]+\n421 4\.7\.0 /);
});

test("trap: on a trap MX any client reaching RCPT, even to postmaster, gets 421 and the action ban", () => {
  const t = transcript(`
    C: HELO client.example
    S: 250 mx.test.example Hello client.example [192.0.2.1]
    C: MAIL FROM:<a@example.net>
    S: 250 2.1.0 Ok
    C: RCPT TO:<postmaster@example.org>
    S: 421 4.3.2 mx.test.example Service not available, closing transmission channel
  `);
  const { replies, session } = play(lineByLine(t.client), { ...STRICT, checks: { ...STRICT.checks, trap: true } });
  assert.equal(replies, t.server);
  assert.deepEqual(session.facts.findings.map((f) => [f.tag, f.action, f.evidence.trap]), [["TRAP", "ban", "trap-mx"]]);
});

test("trap: a spamtrap recipient (MXSCREEN_TRAP_RCPTS) is caught; others are delivered as usual", () => {
  const config = { ...STRICT, checks: { ...STRICT.checks, trapRecipients: ["trap@example.org"] } };
  const fine = play(lineByLine(START + "RCPT TO:<real@example.org>\r\n"), config);
  assert.match(fine.replies, /250 2\.1\.5 Ok\r\n$/);
  const caught = play(lineByLine(START + "RCPT TO:<Trap@Example.org>\r\n"), config);
  assert.match(caught.replies, /421 4\.3\.2 [^\n]+\r\n$/);
  assert.equal(caught.session.facts.findings[0].evidence.trap, "spamtrap");
});

const GREY = { ...STRICT, checks: { ...STRICT.checks, greylist: true } };

function greyPlay(verdict: "pass" | "defer", client = CLIENT) {
  const session = new Session(GREY, client, 0);
  const outputs: Output[] = [];
  const take = (out: Output[]) => {
    for (const o of out) {
      outputs.push(o);
      if (o.type === "lookup-mail-domain") take(session.resolved({ status: "ok", records: ["mx.example.net"], ttl: 0 }, 1));
      if (o.type === "lookup-greylist") take(session.greylisted(verdict, 1));
    }
  };
  for (const line of lineByLine(`${START}RCPT TO:<B@example.org>\r\nRCPT TO:<postmaster@example.org>\r\n`)) take(session.receive(line, 1));
  const replies = outputs.filter((o) => o.type === "reply").map((o) => (o as { text: string }).text);
  const asked = outputs.filter((o) => o.type === "lookup-greylist").map((o) => (o as { triplet: string }).triplet);
  return { replies, asked, session };
}

test("greylist: a deferred triplet gets 451 4.7.1, a passed one 250; postmaster is never greylisted", () => {
  const deferred = greyPlay("defer");
  assert.deepEqual(deferred.asked, ["192.0.2.0/24 <a@example.net> <b@example.org>"]);
  assert.deepEqual(deferred.replies.slice(2), [
    "451 4.7.1 <B@example.org>: Recipient address rejected: Greylisted, try again later\r\n",
    "250 2.1.5 Ok\r\n",
  ]);
  assert.deepEqual(deferred.session.facts.findings.map((f) => [f.tag, f.action]), [["GREYLIST", "enforce"]]);
  assert.equal(deferred.session.facts.tempfails, 1, "the 4xx a real MTA comes back after (README: Observe before you enforce)");
  const passed = greyPlay("pass");
  assert.deepEqual(passed.replies.slice(2), ["250 2.1.5 Ok\r\n", "250 2.1.5 Ok\r\n"]);
  assert.equal(passed.session.facts.findings.length, 0);
  assert.equal(passed.session.facts.tempfails, 0);
});

test("greylist: clients on the pass list are not asked about; a forward-confirmed sender pool is keyed by its domain", () => {
  assert.deepEqual(greyPlay("defer", { ...CLIENT, passed: true }).asked, []);
  const session = new Session(GREY, CLIENT, 0);
  session.start();
  session.learnReverseDns({ status: "pass", name: "mail-a1.outbound.example.com" });
  const out = session.receive(new TextEncoder().encode("HELO mail-a1.outbound.example.com\r\n"), 1);
  assert.equal(out.filter((o) => o.type === "reply").length, 1);
  session.receive(new TextEncoder().encode("MAIL FROM:<>\r\n"), 1);
  const asked = session.receive(new TextEncoder().encode("RCPT TO:<b@example.org>\r\n"), 1);
  assert.deepEqual(asked, [{ type: "lookup-greylist", triplet: "outbound.example.com <> <b@example.org>" }]);
});

test("greylist: deferring many recipients of one message does not count as client errors (no 421 at the error limit)", () => {
  const session = new Session({ ...GREY, maxRecipients: 100 }, CLIENT, 0);
  const replies: string[] = [];
  const take = (out: Output[]) => {
    for (const o of out) {
      if (o.type === "reply") replies.push(o.text);
      if (o.type === "lookup-mail-domain") take(session.resolved({ status: "ok", records: ["mx.example.net"], ttl: 0 }, 1));
      if (o.type === "lookup-greylist") take(session.greylisted("defer", 1));
    }
  };
  for (const line of lineByLine(START + Array.from({ length: 30 }, (_, i) => `RCPT TO:<r${i}@example.org>\r\n`).join(""))) {
    take(session.receive(line, 1));
  }
  assert.equal(replies.filter((r) => r.startsWith("451 4.7.1")).length, 30);
  assert.equal(session.facts.errors, 0);
  assert.ok(!session.closed);
});

test("greylist: a RCPT waits for the reverse DNS asked at the start, so the triplet is the same whether DNS answered before it or after", () => {
  const triplets = ["before", "after"].map((when) => {
    const session = new Session(GREY, CLIENT, 0);
    assert.deepEqual(session.start(), [{ type: "lookup-reverse" }]);
    const confirmed = { status: "pass", name: "mail-a1.outbound.example.com" } as const;
    if (when === "before") session.learnReverseDns(confirmed);
    for (const line of lineByLine(START)) session.receive(line, 1);
    session.resolved({ status: "ok", records: ["mx.example.net"], ttl: 0 }, 1);
    const atRcpt = session.receive(new TextEncoder().encode("RCPT TO:<b@example.org>\r\n"), 1);
    const asked = when === "before"
      ? atRcpt
      : (assert.deepEqual(atRcpt, [], "nothing asked or answered before the reverse DNS"), session.learnReverseDns(confirmed));
    return asked.filter((o) => o.type === "lookup-greylist").map((o) => (o as { triplet: string }).triplet);
  });
  assert.deepEqual(triplets, [["outbound.example.com <a@example.net> <b@example.org>"], [
    "outbound.example.com <a@example.net> <b@example.org>",
  ]]);
});
