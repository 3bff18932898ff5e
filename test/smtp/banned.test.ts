import assert from "node:assert/strict";
import { Session } from "../../src/smtp/session.ts";
import type { Output } from "../../src/smtp/types.ts";
import { test } from "../harness.ts";
import { CLIENT, CONFIG } from "./transcript.ts";

const BANNED = "421 4.7.1 mx.test.example Service unavailable; client banned by policy, closing connection\r\n";
const enc = (s: string) => new TextEncoder().encode(s);
const texts = (outputs: Output[]) => outputs.filter((o) => o.type === "reply").map((o) => (o as { text: string }).text);

test("a ban made while a session is idle: 421 4.7.1 at once, the session closed as banned, nothing it sends after is read", () => {
  const session = new Session(CONFIG, CLIENT, 0);
  session.receive(enc("HELO c.example\r\n"), 0);
  const out = session.banned(BANNED);
  assert.deepEqual(texts(out), [BANNED]);
  assert.equal(out.at(-1)?.type, "close");
  assert.equal(session.facts.end, "banned");
  assert.deepEqual(session.receive(enc("MAIL FROM:<a@example.net>\r\n"), 1), []);
  assert.deepEqual(session.banned(BANNED), [], "a second ban changes nothing");
});

test("a ban while a message is being read drops the message (never delivered half) and closes", () => {
  const session = new Session(CONFIG, CLIENT, 0);
  session.receive(enc("HELO c.example\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: spam\r\n"), 0);
  const out = session.banned(BANNED);
  assert.ok(out.some((o) => o.type === "message-abort"), "the message begun is abandoned");
  assert.ok(!out.some((o) => o.type === "message-end"));
  assert.deepEqual(texts(out), [BANNED]);
  assert.equal(session.facts.end, "banned");
});

test("a ban while a message is being delivered: its answer first (it may already be taken), then 421 4.7.1", () => {
  const session = new Session(CONFIG, CLIENT, 0);
  session.receive(enc("HELO c.example\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nhi\r\n.\r\n"), 0);
  assert.deepEqual(session.banned(BANNED), []);
  assert.deepEqual(texts(session.delivered({ ok: true, id: "Q1" }, 2)), ["250 2.0.0 Ok: queued as Q1\r\n", BANNED]);
  assert.equal(session.facts.end, "banned");
  assert.equal(session.facts.messages, 1);
});
