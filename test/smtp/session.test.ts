import assert from "node:assert/strict";
import { Session } from "../../src/smtp/session.ts";
import { test } from "../harness.ts";
import { byteByByte, CLIENT, CONFIG, everySplit, play, transcript, whole } from "./transcript.ts";

const CLEAN = transcript(`
  C: EHLO client.example
  S: 250-mx.test.example Hello client.example [192.0.2.1]
  S: 250-SIZE 1000
  S: 250-8BITMIME
  S: 250-SMTPUTF8
  S: 250-CHUNKING
  S: 250 ENHANCEDSTATUSCODES
  C: MAIL FROM:<sender@example.net> SIZE=120 BODY=8BITMIME
  S: 250 2.1.0 Ok
  C: RCPT TO:<someone@example.org>
  S: 250 2.1.5 Ok
  C: DATA
  S: 354 End data with <CR><LF>.<CR><LF>
  C: Subject: hello
  C:
  C: ..a line that began with a dot
  C: .
  S: 250 2.0.0 Ok: queued as Q1
  C: QUIT
  S: 221 2.0.0 Bye
`);

test("a clean session gets RFC 5321 replies and one dot-unstuffed message", () => {
  const { replies, messages, session } = play(whole(CLEAN.client));
  assert.equal(replies, CLEAN.server);
  assert.deepEqual(messages, ["Subject: hello\r\n\r\n.a line that began with a dot\r\n"]);
  assert.equal(session.facts.end, "quit");
  assert.equal(session.facts.messages, 1);
});

test("the same session fed byte by byte gives the same replies and message", () => {
  const { replies, messages } = play(byteByByte(CLEAN.client));
  assert.equal(replies, CLEAN.server);
  assert.equal(messages.length, 1);
});

test("the same session split at every byte boundary gives the same replies and message", () => {
  const reference = play(whole(CLEAN.client));
  for (const chunks of everySplit(CLEAN.client)) {
    const { replies, messages } = play(chunks);
    assert.equal(replies, reference.replies, `split at ${chunks[0].length}`);
    assert.deepEqual(messages, reference.messages, `split at ${chunks[0].length}`);
  }
});

test("HELO gets a one-line greeting and refuses ESMTP parameters", () => {
  const t = transcript(`
    C: HELO client.example
    S: 250 mx.test.example Hello client.example [192.0.2.1]
    C: MAIL FROM:<a@example.net> SIZE=10
    S: 555 5.5.4 Unsupported option: SIZE (use EHLO for ESMTP options)
    C: MAIL FROM:<a@example.net>
    S: 250 2.1.0 Ok
  `);
  assert.equal(play(whole(t.client)).replies, t.server);
});

test("commands out of sequence get 503 and bad syntax 501", () => {
  const t = transcript(`
    C: MAIL FROM:<a@example.net>
    S: 503 5.5.1 Error: send HELO/EHLO first
    C: HELO
    S: 501 5.5.4 Syntax: HELO hostname
    C: EHLO client.example
    S: 250-mx.test.example Hello client.example [192.0.2.1]
    S: 250-SIZE 1000
    S: 250-8BITMIME
    S: 250-SMTPUTF8
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: RCPT TO:<b@example.org>
    S: 503 5.5.1 Error: need MAIL command
    C: DATA
    S: 503 5.5.1 Error: need MAIL command
    C: MAIL TO:<a@example.net>
    S: 501 5.5.4 Syntax: MAIL FROM:<address>
    C: MAIL FROM:<not an address>
    S: 501 5.1.7 Bad sender address syntax
    C: MAIL FROM:<a@example.net>
    S: 250 2.1.0 Ok
    C: MAIL FROM:<a@example.net>
    S: 503 5.5.1 Error: nested MAIL command
    C: DATA
    S: 503 5.5.1 Error: need RCPT command
    C: RCPT TO:<@@@>
    S: 501 5.1.3 Bad recipient address syntax
    C: RCPT TO:b@example.org
    S: 250 2.1.5 Ok
    C: DATA extra
    S: 501 5.5.4 Syntax: DATA
    C: RSET now
    S: 501 5.5.4 Syntax: RSET
    C: RSET
    S: 250 2.0.0 Ok
    C: DATA
    S: 503 5.5.1 Error: need MAIL command
  `);
  assert.equal(play(whole(t.client)).replies, t.server);
});

test("recipients: accepted domains, relay refused, postmaster and abuse always, limit 452", () => {
  const t = transcript(`
    C: EHLO c.example
    S: 250-mx.test.example Hello c.example [192.0.2.1]
    S: 250-SIZE 1000
    S: 250-8BITMIME
    S: 250-SMTPUTF8
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: MAIL FROM:<>
    S: 250 2.1.0 Ok
    C: RCPT TO:<x@elsewhere.example>
    S: 554 5.7.1 <x@elsewhere.example>: Relay access denied
    C: RCPT TO:<Postmaster>
    S: 250 2.1.5 Ok
    C: RCPT TO:<abuse>
    S: 250 2.1.5 Ok
    C: RCPT TO:<a@EXAMPLE.ORG>
    S: 250 2.1.5 Ok
    C: RCPT TO:<b@example.org>
    S: 452 4.5.3 Error: too many recipients
  `);
  assert.equal(play(whole(t.client)).replies, t.server);
});

test("NOOP, VRFY, HELP, unknown and not-offered commands", () => {
  const t = transcript(`
    C: NOOP
    S: 250 2.0.0 Ok
    C: VRFY someone
    S: 252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery
    C: HELP
    S: 214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP
    C: XYZZY
    S: 500 5.5.2 Error: command not recognized
    C: STARTTLS
    S: 502 5.5.1 Error: STARTTLS not implemented
    C: AUTH PLAIN
    S: 502 5.5.1 Error: AUTH not implemented
  `);
  const { replies, session } = play(whole(t.client));
  assert.equal(replies, t.server);
  assert.equal(session.facts.unknownCommands, 1);
});

test("a command line over the limit gets 500 5.5.2 and the session goes on", () => {
  const long = `EHLO ${"a".repeat(1200)}\r\nNOOP\r\n`;
  for (const chunks of [whole(long), byteByByte(long)]) {
    const { replies } = play(chunks);
    assert.equal(replies, "500 5.5.2 Error: line too long (limit 1000 octets)\r\n250 2.0.0 Ok\r\n");
  }
});

test("a line of exactly the limit (with its CRLF) is accepted", () => {
  const arg = "a".repeat(1000 - "NOOP ".length - 2);
  assert.equal(play(whole(`NOOP ${arg}\r\n`)).replies, "250 2.0.0 Ok\r\n");
  assert.match(play(whole(`NOOP ${arg}a\r\n`)).replies, /^500 5\.5\.2/);
});

test("SIZE over the limit is refused at MAIL, and a message over it at the end of DATA", () => {
  const declared = play(whole("EHLO c.example\r\nMAIL FROM:<a@example.net> SIZE=5000\r\n"));
  assert.match(declared.replies, /552 5\.3\.4 Message size exceeds fixed limit\r\n$/);
  const body = "x".repeat(100) + "\r\n";
  const big = play(
    whole(`EHLO c.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n${body.repeat(20)}.\r\nNOOP\r\n`),
  );
  assert.match(big.replies, /354 [^\n]*\n552 5\.3\.4 Message size exceeds fixed limit\r\n250 2\.0\.0 Ok\r\n$/);
  assert.equal(big.messages.length, 0);
  assert.ok(big.outputs.some((o) => o.type === "message-abort"));
});

test("only CRLF.CRLF ends DATA: a dot after a bare LF is content (SMTP smuggling)", () => {
  const input = "HELO c.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n" +
    "line one\n.\r\nMAIL FROM:<smuggled@example.net>\r\n.\r\n";
  const { replies, messages, session } = play(whole(input));
  assert.equal(messages.length, 1);
  assert.match(messages[0], /MAIL FROM:<smuggled@example\.net>/);
  assert.match(replies, /250 2\.0\.0 Ok: queued as Q1\r\n$/);
  assert.equal(session.facts.bareLineFeeds, 1);
});

test("a temporary delivery failure gives 451 and the session can try again", () => {
  const input =
    "HELO c.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nhi\r\n.\r\nMAIL FROM:<a@example.net>\r\n";
  const { replies } = play(whole(input), CONFIG, () => ({ ok: false, temporary: true, reason: "spool write failed" }));
  assert.match(replies, /451 4\.3\.0 Error: spool write failed, try again later\r\n250 2\.1\.0 Ok\r\n$/);
});

test("input that arrives while a message is being delivered waits for the reply", () => {
  const session = new Session(CONFIG, CLIENT, 0);
  session.receive(new TextEncoder().encode("HELO c.example\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"), 0);
  const end = session.receive(new TextEncoder().encode("hi\r\n.\r\nQUIT\r\n"), 1);
  assert.ok(end.some((o) => o.type === "message-end"));
  assert.ok(!end.some((o) => o.type === "reply"), "no reply before the delivery outcome");
  const after = session.delivered({ ok: true, id: "Q9" }, 2);
  assert.deepEqual(after.filter((o) => o.type === "reply").map((o) => (o as { text: string }).text), [
    "250 2.0.0 Ok: queued as Q9\r\n",
    "221 2.0.0 Bye\r\n",
  ]);
  assert.ok(after.some((o) => o.type === "close"));
});

test("command and DATA timeouts answer 421 4.4.2 and close (RFC 5321 4.5.3.2)", () => {
  const idle = new Session(CONFIG, CLIENT, 0);
  assert.equal(idle.deadline, CONFIG.commandTimeoutMs);
  assert.deepEqual(idle.tick(CONFIG.commandTimeoutMs - 1), []);
  const out = idle.tick(CONFIG.commandTimeoutMs);
  assert.deepEqual(out, [{ type: "reply", text: "421 4.4.2 mx.test.example Error: timeout exceeded\r\n" }, { type: "close" }]);
  assert.equal(idle.facts.end, "timeout");

  const inData = new Session(CONFIG, CLIENT, 0);
  inData.receive(new TextEncoder().encode("HELO c.example\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.org>\r\nDATA\r\npartial"), 10);
  assert.equal(inData.deadline, 10 + CONFIG.dataTimeoutMs);
  const timedOut = inData.tick(10 + CONFIG.dataTimeoutMs);
  assert.equal(timedOut[0].type, "message-abort");
  assert.equal(inData.facts.end, "timeout");
});

test("twenty errors end the session with 421", () => {
  const { replies, session } = play(whole("RCPT TO:<b@example.org>\r\n".repeat(25)));
  assert.equal((replies.match(/^503 /gm) ?? []).length, 20);
  assert.match(replies, /421 4\.7\.0 mx\.test\.example Error: too many errors\r\n$/);
  assert.equal(session.facts.end, "errors");
});

test("shutdown says 421 at once when idle, and after the reply to a message in flight", () => {
  const idle = new Session(CONFIG, CLIENT, 0);
  assert.match((idle.shutdown()[0] as { text: string }).text, /^421 4\.3\.2 /);
  const busy = new Session(CONFIG, CLIENT, 0);
  busy.receive(new TextEncoder().encode("HELO c.example\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nhi\r\n"), 0);
  assert.deepEqual(busy.shutdown(), []);
  busy.receive(new TextEncoder().encode(".\r\n"), 1);
  const texts = busy.delivered({ ok: true, id: "Q1" }, 2).filter((o) => o.type === "reply").map((o) => (o as { text: string }).text);
  assert.equal(texts[0], "250 2.0.0 Ok: queued as Q1\r\n");
  assert.match(texts[1], /^421 4\.3\.2 /);
});

test("PIPELINING is advertised only when configured", () => {
  const off = play(whole("EHLO c.example\r\n")).replies;
  assert.doesNotMatch(off, /PIPELINING/);
  const on = play(whole("EHLO c.example\r\n"), { ...CONFIG, pipelining: true }).replies;
  assert.match(on, /^250-PIPELINING\r\n/m);
});

const TLS = { ...CONFIG, tls: true };

test("STARTTLS: offered only with a certificate; 220, then nothing pipelined after it runs; EHLO again afterwards", () => {
  assert.match(play(whole("EHLO c.example\r\nSTARTTLS\r\n")).replies, /502 5\.5\.1 Error: STARTTLS not implemented\r\n$/);
  const session = new Session(TLS, CLIENT, 0);
  const enc = (s: string) => new TextEncoder().encode(s);
  const replies = (outputs: ReturnType<Session["receive"]>) => outputs.flatMap((o) => (o.type === "reply" ? [o.text] : []));
  assert.match(replies(session.receive(enc("EHLO c.example\r\n"), 0))[0], /^250-STARTTLS\r\n/m);
  const injected = ["MAIL FROM:<injected@example.net>\r\n", "RCPT TO:<b@example.org>\r\n"];
  const started = session.receive(enc(`STARTTLS\r\n${injected[0]}`), 1);
  assert.deepEqual(started, [{ type: "reply", text: "220 2.0.0 Ready to start TLS\r\n" }, { type: "starttls" }]);
  assert.deepEqual(session.receive(enc(injected[1]), 2), [], "plaintext before the handshake is dropped");
  assert.equal(session.facts.injectedBytes, injected.join("").length);
  assert.deepEqual(session.tlsStarted(true, 3), []);
  const after = session.receive(enc("MAIL FROM:<>\r\nEHLO c.example\r\nMAIL FROM:<>\r\nSTARTTLS\r\n"), 4);
  const texts = replies(after);
  assert.equal(texts[0], "503 5.5.1 Error: send HELO/EHLO first\r\n", "the state before TLS is forgotten (RFC 3207 4.2)");
  assert.doesNotMatch(texts[1], /STARTTLS/);
  assert.equal(texts[2], "250 2.1.0 Ok\r\n");
  assert.equal(texts[3], "503 5.5.1 Error: TLS already active\r\n");
  assert.equal(session.facts.tls, true);
});

test("STARTTLS with an argument is 501, inside a transaction 503, and a failed handshake ends the session", () => {
  assert.match(play(whole("EHLO c.example\r\nSTARTTLS now\r\n"), TLS).replies, /501 5\.5\.4 Syntax: STARTTLS\r\n$/);
  assert.match(
    play(whole("EHLO c.example\r\nMAIL FROM:<a@example.net>\r\nSTARTTLS\r\n"), TLS).replies,
    /503 5\.5\.1 Error: STARTTLS in the middle of a mail transaction\r\n$/,
  );
  const session = new Session(TLS, CLIENT, 0);
  session.receive(new TextEncoder().encode("STARTTLS\r\n"), 0);
  assert.deepEqual(session.tlsStarted(false, 1), [{ type: "close" }]);
  assert.equal(session.facts.end, "tls-failed", "not a client that simply left: it must not count as a pass");
});

test("a different EHLO inside TLS is not HELO schizophrenia: what was said before STARTTLS is forgotten", () => {
  const session = new Session({ ...TLS, actions: {} }, CLIENT, 0);
  const enc = (s: string) => new TextEncoder().encode(s);
  session.receive(enc("EHLO before.example\r\n"), 0);
  session.receive(enc("STARTTLS\r\n"), 1);
  session.tlsStarted(true, 2);
  const after = session.receive(enc("EHLO after.example\r\n"), 3).flatMap((o) => (o.type === "reply" ? [o.text] : []));
  assert.match(after[0], /^250-mx\.test\.example Hello after\.example/);
  assert.equal(session.closed, false);
});
