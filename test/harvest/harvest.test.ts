import assert from "node:assert/strict";
import { sessionFindings } from "../../src/gate/conclude.ts";
import { Session } from "../../src/smtp/session.ts";
import type { ClientInfo, GateFacts, Output, SessionConfig } from "../../src/smtp/types.ts";
import { test } from "../harness.ts";
import { CLIENT, lineByLine, STRICT } from "../smtp/transcript.ts";

const UNDER_HARVEST: GateFacts = { dnsbl: [], harvested: [["example.org", 120]] };
const START = "HELO client.example\r\nMAIL FROM:<a@example.net>\r\n";

/** Plays `rcpts` after START; every greylist question is answered `verdict`. Greylisting itself is off (MXSCREEN_GREYLIST=false). */
function play(
  rcpts: string[],
  verdict: "pass" | "defer",
  config: SessionConfig = STRICT,
  client: ClientInfo = CLIENT,
  gate = UNDER_HARVEST,
) {
  const session = new Session(config, client, 0, gate);
  const replies: string[] = [];
  const asked: string[] = [];
  const take = (out: Output[]) => {
    for (const o of out) {
      if (o.type === "reply") replies.push(o.text);
      if (o.type === "lookup-mail-domain") take(session.resolved({ status: "ok", records: ["mx.example.net"], ttl: 0 }, 1));
      if (o.type === "lookup-greylist") {
        asked.push(o.triplet);
        take(session.greylisted(verdict, 1));
      }
    }
  };
  for (const line of lineByLine(START + rcpts.map((r) => `RCPT TO:<${r}>\r\n`).join("") + "QUIT\r\n")) take(session.receive(line, 1));
  return { replies: replies.slice(2, -1), asked, session };
}

test("harvest: a client not yet passed is greylisted for a domain under harvest though MXSCREEN_GREYLIST is off; the greylist's 451 is the verdict, the harvest a note", () => {
  assert.equal(STRICT.checks.greylist, false);
  const deferred = play(["someone@Example.org", "postmaster@example.org"], "defer");
  assert.deepEqual(deferred.asked, ["192.0.2.0/24 <a@example.net> <someone@example.org>"]);
  assert.deepEqual(deferred.replies, [
    "451 4.7.1 <someone@Example.org>: Recipient address rejected: Greylisted, try again later\r\n",
    "250 2.1.5 Ok\r\n",
  ]);
  assert.deepEqual(deferred.session.facts.findings.map((f) => [f.tag, f.action, f.evidence.domain ?? f.evidence.recipient]), [
    ["HARVEST", "ban", "example.org"],
    ["GREYLIST", "enforce", "someone@Example.org"],
  ]);
  const [verdict, ...also] = sessionFindings({ kind: "new" }, [], deferred.session.facts);
  assert.deepEqual(
    [verdict.event, verdict.action, verdict.evidence.also],
    ["GREYLIST", "enforce", "HARVEST"],
    "never banned for sending to a harvested domain",
  );
  assert.deepEqual(also.map((f) => f.event), ["HARVEST"], "the harvest is an event row of its own");

  const retried = play(["someone@example.org"], "pass");
  assert.deepEqual(retried.replies, ["250 2.1.5 Ok\r\n"]);
  assert.equal(
    sessionFindings({ kind: "new" }, [], retried.session.facts)[0].event,
    "PASS NEW",
    "a sender that retried is passed as usual",
  );
});

test("harvest: passed clients, other domains and a domain no longer under harvest are not greylisted; ignore and observe only log", () => {
  assert.deepEqual(play(["someone@example.org"], "defer", STRICT, { ...CLIENT, passed: true }).asked, []);
  assert.deepEqual(play(["someone@example.org"], "defer", STRICT, CLIENT, { dnsbl: [] }).asked, []);
  const elsewhere = play(["someone@example.org"], "defer", STRICT, CLIENT, { dnsbl: [], harvested: [["example.com", 500]] });
  assert.deepEqual([elsewhere.asked, elsewhere.replies, elsewhere.session.facts.findings], [[], ["250 2.1.5 Ok\r\n"], []]);
  for (const config of [{ ...STRICT, actions: { harvest: "ignore" as const } }, { ...STRICT, observe: true }]) {
    const logged = play(["someone@example.org"], "defer", config);
    assert.deepEqual([logged.asked, logged.replies], [[], ["250 2.1.5 Ok\r\n"]]);
    assert.deepEqual(logged.session.facts.findings.map((f) => [f.tag, f.action]), [["HARVEST", config.observe ? "observe" : "ignore"]]);
  }
});

/** A relaying session whose every RCPT the upstream answers with the next of `answers`. */
function relay(answers: string[], config: SessionConfig = { ...STRICT, relay: true }) {
  const session = new Session(config, CLIENT, 0);
  const replies: string[] = [];
  const queue = [...answers];
  const take = (out: Output[]) => {
    for (const o of out) {
      if (o.type === "reply") replies.push(o.text);
      if (o.type === "lookup-mail-domain") take(session.resolved({ status: "ok", records: ["mx.example.net"], ttl: 0 }, 1));
      if (o.type === "upstream" && o.command.startsWith("MAIL")) take(session.upstreamReplied({ code: 250, text: "250 2.1.0 Ok\r\n" }, 1));
      if (o.type === "upstream" && o.command.startsWith("RCPT")) {
        const text = queue.shift()!;
        take(session.upstreamReplied({ code: Number(text.slice(0, 3)), text: `${text}\r\n` }, 1));
      }
    }
  };
  const rcpts = answers.map((_, i) => `RCPT TO:<r${i}@example.org>\r\n`).join("");
  for (const line of lineByLine(START + rcpts)) take(session.receive(line, 1));
  return { replies: replies.slice(2), session };
}

test("relayed: the upstream's unknown-user answers (550 5.1.1, a 4xx No such user, OpenSMTPD's 524 5.2.4) are passed back and counted per domain; other refusals are not counted", () => {
  const answers = [
    "550 5.1.1 <r0@example.org>: Recipient address rejected: User unknown in local recipient table",
    "451 No such user 'r1'",
    "524 5.2.4 Mailing list expansion problem: <r2@example.org>",
    "550 5.7.1 <r3@example.org>: Recipient address rejected: Access denied",
    "452 4.2.2 Mailbox full",
    "250 2.1.5 Ok",
  ];
  const { replies, session } = relay(answers);
  assert.deepEqual(replies, answers.map((a) => `${a}\r\n`), "every answer is the client's, as it was");
  assert.equal(session.facts.badRecipients, 3);
  assert.deepEqual(session.facts.badRecipientDomains, [["example.org", 3]]);
  assert.equal(session.facts.errors, 3, "the 5xx answers are the client's errors, the 4xx ones not");
});

test("relayed: the dictionary check closes on the upstream's unknowns as on ours, the one past MXSCREEN_MAX_BAD_RCPT", () => {
  const config = { ...STRICT, relay: true, checks: { ...STRICT.checks, maxBadRecipients: 2 } };
  const unknown = (i: number) => `550 5.1.1 <r${i}@example.org>: Recipient address rejected: User unknown`;
  const { replies, session } = relay([unknown(0), unknown(1), unknown(2), unknown(3)], config);
  assert.deepEqual(replies.slice(0, 2), [`${unknown(0)}\r\n`, `${unknown(1)}\r\n`]);
  assert.equal(replies[2], "421 4.7.0 mx.test.example Error: too many unknown recipients; closing\r\n");
  assert.ok(session.closed);
  assert.deepEqual(session.facts.findings.map((f) => [f.tag, f.evidence.bad_recipients]), [["DICTIONARY", 3]]);
});
