import assert from "node:assert/strict";
import { Session } from "../../src/smtp/session.ts";
import type { Output } from "../../src/smtp/types.ts";
import { test } from "../harness.ts";
import { byteByByte, CLIENT, CONFIG, whole } from "./transcript.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const replies = (out: Output[]) => out.flatMap((o) => (o.type === "reply" ? [o.text] : []));
const TOO_LONG = "500 5.5.2 Error: line too long (limit 1000 octets)\r\n";

function feed(session: Session, chunks: Uint8Array[]): Output[] {
  return chunks.flatMap((chunk) => session.receive(chunk, 1));
}

test("a command line without LF is answered 500 5.5.2 as soon as it passes the limit, once, fed whole or byte by byte", () => {
  for (const split of [whole, byteByByte]) {
    const session = new Session(CONFIG, CLIENT, 0);
    assert.deepEqual(replies(feed(session, split(`EHLO ${"a".repeat(1200)}`))), [TOO_LONG], split.name);
    assert.deepEqual(
      replies(feed(session, split(`${"a".repeat(500)}\r\nNOOP\r\n`))),
      ["250 2.0.0 Ok\r\n"],
      `${split.name}: no second answer when its end comes`,
    );
    assert.equal(session.facts.errors, 1);
  }
});

test("a client that streams on far past the limit without LF is closed with 421", () => {
  for (const split of [whole, byteByByte]) {
    const session = new Session(CONFIG, CLIENT, 0);
    const out = feed(session, split(`NOOP ${"b".repeat(6000)}`));
    assert.deepEqual(
      replies(out),
      [TOO_LONG, "421 4.7.0 mx.test.example Error: command line far past the length limit; closing\r\n"],
      split.name,
    );
    assert.equal(out[out.length - 1].type, "close");
    assert.equal(session.facts.end, "errors");
  }
  const patient = new Session(CONFIG, CLIENT, 0);
  assert.deepEqual(
    replies(feed(patient, whole(`NOOP ${"b".repeat(3500)}\r\nNOOP\r\n`))),
    [TOO_LONG, "250 2.0.0 Ok\r\n"],
    "a few limits past it and then its end: still served",
  );
  const ended = new Session(CONFIG, CLIENT, 0);
  assert.deepEqual(replies(feed(ended, whole(`NOOP ${"b".repeat(6000)}\r\nNOOP\r\n`))), [
    TOO_LONG,
    "421 4.7.0 mx.test.example Error: command line far past the length limit; closing\r\n",
  ], "judged on its length, wherever its reads ended");
});

test("inside DATA a line without LF that goes on for megabytes is discarded, the message dropped at once and refused at the final dot", () => {
  const session = new Session(CONFIG, CLIENT, 0);
  session.receive(enc("HELO c.example\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: x\r\n"), 1);
  const chunk = enc("c".repeat(64 * 1024));
  const during: Output[] = [];
  for (let i = 0; i < 48; i++) during.push(...session.receive(chunk, 2));
  assert.deepEqual(during.map((o) => o.type), ["message-abort"], "no reply, no content passed on, no close");
  assert.equal(session.closed, false);
  const end = session.receive(enc("\r\n.\r\nNOOP\r\n"), 3);
  assert.deepEqual(replies(end), ["500 5.5.2 Error: line too long (limit 1000 octets, RFC 5321 4.5.3.1.6)\r\n", "250 2.0.0 Ok\r\n"]);
  assert.ok(!end.some((o) => o.type === "message-end"));
});

test("after an over-long content line ended by a bare LF, a dot line is content, not the end of data (smuggling)", () => {
  for (const split of [whole, byteByByte]) {
    const session = new Session(CONFIG, CLIENT, 0);
    const input = `HELO c.example\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n${
      "d".repeat(1500)
    }\n.\r\nMAIL FROM:<smuggled@example.net>\r\n.\r\n`;
    const texts = replies(feed(session, split(input)));
    assert.equal(texts.length, 5, `${split.name}: ${texts.join("")}`);
    assert.match(texts[4], /^500 5\.5\.2 Error: line too long/);
  }
});
