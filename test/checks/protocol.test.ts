import assert from "node:assert/strict";
import { test } from "../harness.ts";
import { byteByByte, lineByLine, play, STRICT, transcript, whole } from "../smtp/transcript.ts";

const EHLO = `
  C: EHLO client.example
  S: 250-mx.test.example Hello client.example [192.0.2.1]
  S: 250-SIZE 1000
  S: 250-8BITMIME
  S: 250-SMTPUTF8
  S: 250-CHUNKING
  S: 250 ENHANCEDSTATUSCODES
`;

test("non-smtp: an HTTP request gets 521 and is closed at once; nothing after it is read", () => {
  const t = transcript(`
    C: GET / HTTP/1.1
    S: 521 5.5.1 mx.test.example Error: non-SMTP command; closing
  `);
  const { replies, session } = play(whole(`${t.client}Host: mx.test.example\r\nEHLO x.example\r\n`), STRICT);
  assert.equal(replies, t.server);
  assert.equal(session.facts.end, "check");
  assert.deepEqual(session.facts.findings.map((f) => [f.tag, f.action]), [["NON-SMTP", "enforce"]]);
  assert.equal(session.facts.findings[0].evidence.sent, "GET / HTTP/1.1");
});

test("non-smtp: a header-like line and the POP3 verbs are caught; MAIL FROM: is not header-like", () => {
  for (const line of ["Host: mx.test.example", "USER root", "PASS secret", "CONNECT 10.0.0.1:25 HTTP/1.0", "POST /x HTTP/1.1"]) {
    assert.match(play(lineByLine(`${line}\r\n`), STRICT).replies, /^521 5\.5\.1 /, line);
  }
  const t = transcript(`${EHLO}
    C: MAIL FROM:<a@example.net>
    S: 250 2.1.0 Ok
  `);
  assert.equal(play(lineByLine(t.client), STRICT).replies, t.server);
});

test("bare-newline: a command ended by LF alone gets 521 and is closed; CRLF is fine", () => {
  const bad = play(lineByLine("EHLO client.example\nMAIL FROM:<a@example.net>\r\n"), STRICT);
  assert.equal(bad.replies, "521 5.5.2 mx.test.example Error: bare <LF> received; lines end in <CR><LF>\r\n");
  assert.deepEqual(bad.session.facts.findings.map((f) => f.tag), ["BARE-LF"]);
  assert.equal(play(lineByLine("NOOP\r\n"), STRICT).session.facts.findings.length, 0);
});

test("bare-newline with action ignore: recorded, and the session goes on", () => {
  const { replies, session } = play(lineByLine("NOOP\nNOOP\r\n"), { ...STRICT, actions: { "bare-newline": "ignore" } });
  assert.equal(replies, "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n");
  assert.deepEqual(session.facts.findings.map((f) => [f.tag, f.action]), [["BARE-LF", "ignore"]]);
});

test("unknown-commands: three are answered 500, the fourth gets 421 and the session is closed", () => {
  const t = transcript(`
    C: XYZZY
    S: 500 5.5.2 Error: command not recognized
    C: PLUGH
    S: 500 5.5.2 Error: command not recognized
    C: STARTTLS
    S: 502 5.5.1 Error: STARTTLS not implemented
    C: FOO
    S: 500 5.5.2 Error: command not recognized
    C: BAR
    S: 421 4.7.0 mx.test.example Error: too many unrecognized commands; closing
  `);
  const { replies, session } = play(lineByLine(`${t.client}NOOP\r\n`), STRICT);
  assert.equal(replies, t.server);
  assert.equal(session.facts.findings[0].evidence.unknown, 4);
});

test("rset: one RSET is fine, the sixth gets 421 and close; the limit follows MXSCREEN_MAX_RSET", () => {
  const fine = play(lineByLine("EHLO client.example\r\nMAIL FROM:<a@example.net>\r\nRSET\r\nMAIL FROM:<a@example.net>\r\n"), STRICT);
  assert.match(fine.replies, /250 2\.0\.0 Ok\r\n250 2\.1\.0 Ok\r\n$/);
  assert.equal(fine.session.facts.findings.length, 0);
  const abuse = play(lineByLine("RSET\r\n".repeat(7)), STRICT);
  assert.equal(abuse.replies, "250 2.0.0 Ok\r\n".repeat(5) + "421 4.7.0 mx.test.example Error: too many RSET commands; closing\r\n");
  assert.deepEqual(abuse.session.facts.findings.map((f) => f.tag), ["RSET"]);
  const strict = play(lineByLine("RSET\r\nRSET\r\n"), { ...STRICT, checks: { ...STRICT.checks, maxResets: 1 } });
  assert.match(strict.replies, /^250 [^\n]+\n421 4\.7\.0 /);
});

test("rset: RSETs that end a transaction never count, however many messages a connection carries", () => {
  const { replies, session } = play(
    lineByLine("HELO client.example\r\n" + "MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nRSET\r\n".repeat(20)),
    STRICT,
  );
  assert.doesNotMatch(replies, /^421 /m);
  assert.equal(session.facts.resets, 0);
  assert.deepEqual(session.facts.findings, []);
  const idle = play(lineByLine("HELO client.example\r\nMAIL FROM:<a@example.net>\r\nRSET\r\n" + "RSET\r\n".repeat(6)), STRICT);
  assert.match(
    idle.replies,
    /250 2\.0\.0 Ok\r\n421 4\.7\.0 mx\.test\.example Error: too many RSET commands; closing\r\n$/,
    "idle RSETs after it still do",
  );
  assert.deepEqual(idle.session.facts.findings.map((f) => [f.tag, f.evidence.resets]), [["RSET", 6]]);
});

test("transactions: an Exim queue run of 1000 messages in one connection is served; MAIL #1001 gets 421, tagged TRANSACTIONS, not RSET", () => {
  const config = { ...STRICT, checks: { ...STRICT.checks, maxTransactions: 1000 }, maxMessageSize: 10_000 };
  const message = "MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: queued\r\n\r\nbody\r\n.\r\nRSET\r\n";
  const { replies, messages, session } = play(
    lineByLine(`EHLO exim.example\r\n${message.repeat(1000)}MAIL FROM:<a@example.net>\r\n`),
    config,
  );
  assert.equal(messages.length, 1000);
  assert.match(replies, /250 2\.0\.0 Ok\r\n421 4\.7\.0 mx\.test\.example Error: too many transactions in one connection; closing\r\n$/);
  assert.deepEqual(session.facts.findings.map((f) => [f.check, f.tag, f.evidence.transactions]), [["transactions", "TRANSACTIONS", 1001]]);
  const small = play(lineByLine("HELO client.example\r\n" + "MAIL FROM:<a@example.net>\r\nRSET\r\n".repeat(3)), {
    ...STRICT,
    checks: { ...STRICT.checks, maxTransactions: 2 },
  });
  assert.match(
    small.replies,
    /250 2\.1\.0 Ok\r\n250 2\.0\.0 Ok\r\n421 4\.7\.0 mx\.test\.example Error: too many transactions in one connection; closing\r\n$/,
  );
});

test("command-limit: the command past MXSCREEN_MAX_COMMANDS gets 421 and close", () => {
  const config = { ...STRICT, checks: { ...STRICT.checks, maxCommands: 10 } };
  const { replies, session } = play(lineByLine("NOOP\r\n".repeat(12)), config);
  assert.equal(replies, "250 2.0.0 Ok\r\n".repeat(10) + "421 4.7.0 mx.test.example Error: too many commands; closing\r\n");
  assert.equal(session.facts.findings[0].tag, "COMMAND-LIMIT");
});

test("observe mode records every hit and enforces none", () => {
  const { replies, session } = play(lineByLine("GET / HTTP/1.1\nNOOP\r\n"), { ...STRICT, observe: true });
  assert.equal(replies, "500 5.5.2 Error: command not recognized\r\n250 2.0.0 Ok\r\n");
  assert.deepEqual(session.facts.findings.map((f) => [f.tag, f.action]), [["NON-SMTP", "observe"], ["BARE-LF", "observe"]]);
});

test("an allowed client skips every check", () => {
  const { replies, session } = play(lineByLine("GET / HTTP/1.1\r\n"), STRICT, undefined, {
    address: "192.0.2.1",
    port: 1,
    passed: false,
    allowed: true,
  });
  assert.equal(replies, "500 5.5.2 Error: command not recognized\r\n");
  assert.equal(session.facts.findings.length, 0);
});

test("check verdicts do not depend on how the input was split, pipelining aside: line by line and byte by byte agree", () => {
  const inputs = [
    "HELO 192.0.2.1\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<x@example.org>\r\nRCPT TO:<postmaster@example.org>\r\n",
    "HELO c.example\r\nMAIL FROM:<a@example.net>\r\n" + "RCPT TO:<x@elsewhere.example>\r\n".repeat(7),
    "A\r\nB\r\nC\r\nD\r\nNOOP\r\n",
    "EHLO one.example\r\nHELO two.example\r\n",
    "NOOP\r\nGET / HTTP/1.0\r\nNOOP\r\n",
    "NOOP\r\nNOOP\nNOOP\r\n",
  ];
  for (const input of inputs) {
    const lines = play(lineByLine(input), STRICT);
    const bytes = play(byteByByte(input), STRICT);
    assert.equal(bytes.replies, lines.replies, input);
    assert.deepEqual(bytes.session.facts.findings, lines.session.facts.findings, input);
    assert.ok(lines.session.facts.findings.length > 0, `the input trips a check: ${JSON.stringify(input)}`);
  }
});
