import assert from "node:assert/strict";
import { ehloKeywordsOf, extensionsOf } from "../../src/delivery/ehlo-extensions.ts";
import { Session } from "../../src/smtp/session.ts";
import type { Output } from "../../src/smtp/types.ts";
import { test } from "../harness.ts";
import { byteByByte, CLIENT, CONFIG, everySplit, lineByLine, play, STRICT, whole } from "./transcript.ts";

const encoder = new TextEncoder();
const EHLO = "EHLO client.example\r\n";
const ENVELOPE = "MAIL FROM:<sender@example.net>\r\nRCPT TO:<someone@example.org>\r\n";
/** Replies up to the RCPT's, as this configuration (the spool) gives them. */
const BEFORE =
  "250-mx.test.example Hello client.example [192.0.2.1]\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n250 ENHANCEDSTATUSCODES\r\n" +
  "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n";

/** Two chunks cut inside a line and between its CR and LF; dots are only content in BDAT (no stuffing), a lone dot too. */
const FIRST = "Subject: chunks\r\n\r\n.a dot that stays\r\nhalf a li";
const SECOND = "ne\r\n.\r\nthe end\r";
const CHUNKED = `${EHLO}${ENVELOPE}BDAT ${FIRST.length}\r\n${FIRST}BDAT ${SECOND.length + 1} LAST\r\n${SECOND}\nQUIT\r\n`;

test("BDAT: chunks cut anywhere make one message, their dots untouched; each chunk answered, LAST by the delivery", () => {
  for (const chunks of [whole(CHUNKED), byteByByte(CHUNKED), lineByLine(CHUNKED)]) {
    const { replies, messages, session } = play(chunks);
    assert.equal(replies, `${BEFORE}250 2.0.0 ${FIRST.length} octets received\r\n250 2.0.0 Ok: queued as Q1\r\n221 2.0.0 Bye\r\n`);
    assert.deepEqual(messages, ["Subject: chunks\r\n\r\n.a dot that stays\r\nhalf a line\r\n.\r\nthe end\r\n"]);
    assert.equal(session.facts.messages, 1);
  }
  const answers = new Set(everySplit(CHUNKED).map((chunks) => play(chunks).replies));
  assert.equal(answers.size, 1, "the same replies wherever the reads end");
});

test("BDAT: a last line without its line end gets CRLF; BDAT 0 LAST ends a message; a chunk sent with its command is no pipelining", () => {
  // STRICT: the pipelining check enforces; the chunk in the command's read is part of the command.
  const played = play([
    encoder.encode(EHLO),
    encoder.encode(ENVELOPE.split("\r\n")[0] + "\r\n"),
    encoder.encode(ENVELOPE.split("\r\n")[1] + "\r\n"),
    encoder.encode("BDAT 7\r\nno line"),
    encoder.encode("BDAT 0 LAST\r\n"),
  ], STRICT);
  assert.equal(played.replies, `${BEFORE}250 2.0.0 7 octets received\r\n250 2.0.0 Ok: queued as Q1\r\n`);
  assert.deepEqual(played.messages, ["no line\r\n"]);
  assert.deepEqual(played.session.facts.findings, []);
});

test("BDAT out of sequence, DATA or RCPT between chunks, a message past the size limit: refused once the chunk is read, never taken for commands", () => {
  const big = "x".repeat(600) + "\r\n";
  const input = `${EHLO}BDAT 10 LAST\r\nQUIT\r\nXXXX` + `${ENVELOPE}BDAT 5\r\nab\r\nXDATA\r\nRCPT TO:<b@example.org>\r\nRSET\r\n` +
    `${ENVELOPE}BDAT ${big.length}\r\n${big}BDAT ${big.length}\r\n${big}BDAT 3 LAST\r\nab\nNOOP\r\n`;
  const { replies, messages, session } = play(lineByLine(input));
  assert.equal(
    replies,
    "250-mx.test.example Hello client.example [192.0.2.1]\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n250 ENHANCEDSTATUSCODES\r\n" +
      "503 5.5.1 Error: need MAIL command\r\n" +
      "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 5 octets received\r\n" +
      "503 5.5.1 Error: BDAT transaction in progress\r\n503 5.5.1 Error: BDAT transaction in progress\r\n250 2.0.0 Ok\r\n" +
      "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 602 octets received\r\n552 5.3.4 Message size exceeds fixed limit\r\n503 5.5.1 Error: need MAIL command\r\n250 2.0.0 Ok\r\n",
  );
  assert.deepEqual(messages, [], "nothing begun was delivered");
  assert.equal(session.facts.unknownCommands, 0, "no chunk byte was read as a command");
});

test("BDAT: not offered after HELO (502, as before), a size that is no number closes the connection (its chunk cannot be found)", () => {
  assert.match(
    play(lineByLine(`HELO client.example\r\n${ENVELOPE}BDAT 4 LAST\r\n`)).replies,
    /502 5\.5\.1 Error: BDAT not implemented\r\n$/,
  );
  const bad = play(lineByLine(`${EHLO}${ENVELOPE}BDAT lots\r\n`));
  assert.match(bad.replies, /501 5\.5\.4 Syntax: BDAT size \[LAST\]\r\n$/);
  assert.equal(bad.session.closed, true);
});

test("BDAT relayed: the upstream is asked DATA, its 354 is not the client's, the chunks stream on as content, LAST asks for the upstream's verdict", () => {
  const session = new Session({ ...CONFIG, relay: true, acceptDomains: [] }, CLIENT, 0);
  session.learnUpstreamExtensions(extensionsOf(ehloKeywordsOf("250-mta\r\n250-8BITMIME\r\n250 CHUNKING\r\n")));
  const outputs: Output[] = [];
  const replies = () => outputs.flatMap((o) => (o.type === "reply" ? [o.text] : [])).join("");
  const handle = (out: Output[]) => {
    for (const o of out) {
      outputs.push(o);
      if (o.type === "lookup-mail-domain") handle(session.resolved({ status: "ok", records: ["mx"], ttl: 0 }, 1));
      if (o.type === "upstream") {
        handle(
          session.upstreamReplied(o.command === "DATA" ? { code: 354, text: "354 go on\r\n" } : { code: 250, text: "250 2.0.0 Ok\r\n" }, 1),
        );
      }
      if (o.type === "message-end") handle(session.delivered({ ok: true, id: "UP1", reply: "250 2.0.0 Ok: queued as UP1\r\n" }, 1));
    }
  };
  for (const chunk of lineByLine(`${EHLO}${ENVELOPE}`)) handle(session.receive(chunk, 1));
  handle(session.receive(encoder.encode("BDAT 8\r\n.dot\r\nab"), 1));
  handle(session.receive(encoder.encode("BDAT 3 LAST\r\nc\r\n"), 1));
  assert.deepEqual(outputs.flatMap((o) => (o.type === "upstream" ? [o.command] : [])), [
    "MAIL FROM:<sender@example.net>",
    "RCPT TO:<someone@example.org>",
    "DATA",
  ]);
  const data = new TextDecoder().decode(Uint8Array.from(outputs.flatMap((o) => (o.type === "message-data" ? [...o.bytes] : []))));
  assert.equal(data, ".dot\r\nabc\r\n", "unstuffed content: the upstream side stuffs it for DATA");
  assert.match(replies(), /250 2\.0\.0 Ok\r\n250 2\.0\.0 8 octets received\r\n250 2\.0\.0 Ok: queued as UP1\r\n$/);
  assert.doesNotMatch(replies(), /354/);
});

test("BDAT: the chunks of a message carry mail, so many small ones never reach MXSCREEN_MAX_COMMANDS", () => {
  const config = { ...STRICT, checks: { ...STRICT.checks, maxCommands: 10 } };
  const chunks = Array.from({ length: 30 }, (_, i) => `BDAT 4\r\n${String(i).padStart(2, "0")}\r\n`).join("");
  const { replies, messages } = play(lineByLine(`${EHLO}${ENVELOPE}${chunks}BDAT 0 LAST\r\n`), config);
  assert.doesNotMatch(replies, /421/);
  assert.equal(messages.length, 1);
  assert.equal(messages[0].split("\r\n").length, 31);
});
