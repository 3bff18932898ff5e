import assert from "node:assert/strict";
import { namesOwnHost } from "../../src/checks/fake-bounce.ts";
import { test } from "../harness.ts";
import { lineByLine, play, STRICT } from "../smtp/transcript.ts";

const OWN = { ...STRICT, checks: { ...STRICT.checks, ownHosts: ["mx1.example.org"] } };

function bounce(body: string): string {
  return `HELO mailer.example.net\r\nMAIL FROM:<>\r\nRCPT TO:<user@example.org>\r\nDATA\r\n${body}.\r\n`;
}

test("fake-bounce: a bounce naming our host in a Received: line of the returned message is delivered", () => {
  const real =
    "Subject: Undelivered Mail\r\n\r\n--boundary\r\nReceived: from user.example.org (user.example.org [192.0.2.7])\r\n\tby mx1.example.org (mxscreen) with ESMTP id X;\r\n\tMon, 23 Nov 2026 00:41:34 +0000\r\n";
  const { replies, messages, session } = play(lineByLine(bounce(real)), OWN);
  assert.match(replies, /250 2\.0\.0 Ok: queued as Q1\r\n$/);
  assert.equal(messages.length, 1);
  assert.equal(session.facts.findings.length, 0);
});

test("fake-bounce: a bounce without such a line gets 550 5.7.1 after DATA and is not delivered; the session goes on", () => {
  const fake =
    "Subject: Undelivered Mail\r\n\r\nReceived: from x by mx1.example.org.evil.example;\r\nmx1.example.org in the text does not count\r\n";
  const { replies, messages, session, outputs } = play(lineByLine(`${bounce(fake)}NOOP\r\n`), OWN);
  assert.match(replies, /354 [^\n]+\n550 5\.7\.1 Error: bounce for a message that did not pass through our hosts\r\n250 2\.0\.0 Ok\r\n$/);
  assert.equal(messages.length, 0);
  assert.ok(outputs.some((o) => o.type === "message-abort"));
  assert.deepEqual(session.facts.findings.map((f) => f.tag), ["FAKE-BOUNCE"]);
});

test("fake-bounce: off without MXSCREEN_OWN_HOSTS, and never about mail with a sender", () => {
  assert.equal(play(lineByLine(bounce("hi\r\n")), STRICT).messages.length, 1);
  const withSender = play(
    lineByLine("HELO mailer.example.net\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<user@example.org>\r\nDATA\r\nhi\r\n.\r\n"),
    OWN,
  );
  assert.equal(withSender.messages.length, 1);
});

test("namesOwnHost matches whole host names only, case aside", () => {
  assert.ok(namesOwnHost("Received: from a by MX1.Example.org (Postfix)", ["mx1.example.org"]));
  assert.ok(namesOwnHost("\tby mx1.example.org;", ["mx1.example.org"]));
  assert.ok(!namesOwnHost("by notmx1.example.org", ["mx1.example.org"]));
  assert.ok(!namesOwnHost("by mx1.example.org.evil", ["mx1.example.org"]));
  assert.ok(namesOwnHost("by mx1.example.org.", ["mx1.example.org"]), "a trailing dot ends a sentence or a name");
});
