import assert from "node:assert/strict";
import { Session } from "../../src/smtp/session.ts";
import type { ReverseDns } from "../../src/dns/types.ts";
import type { Output } from "../../src/smtp/types.ts";
import { test } from "../harness.ts";
import { byteByByte, CLIENT, CONFIG, whole } from "./transcript.ts";

const replies = (out: Output[]) => out.flatMap((o) => (o.type === "reply" ? [o.text] : []));
const begun = (out: Output[]) => out.flatMap((o) => (o.type === "message-begin" ? [o.envelope] : []));
const ENVELOPE = "HELO c.example\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.org>\r\n";
const PASS: ReverseDns = { status: "pass", name: "mail.example.net" };

function feed(session: Session, chunks: Uint8Array[]): Output[] {
  return chunks.flatMap((chunk) => session.receive(chunk, 1));
}

test("the session asks for the client's reverse DNS once, at the start; an allowed client is not looked up", () => {
  const session = new Session(CONFIG, CLIENT, 0);
  assert.deepEqual(session.start(), [{ type: "lookup-reverse" }]);
  assert.deepEqual(session.start(), []);
  assert.deepEqual(new Session(CONFIG, { ...CLIENT, allowed: true }, 0).start(), []);
});

test("a DATA before the PTR answer waits for it: no 354 and no message until then, and the header gets the real answer", () => {
  for (const split of [whole, byteByByte]) {
    const session = new Session(CONFIG, CLIENT, 0);
    session.start();
    const before = feed(session, split(`${ENVELOPE}DATA\r\n`));
    assert.equal(replies(before).length, 3, split.name);
    assert.deepEqual(begun(before), [], `${split.name}: no message-begin before the answer`);
    assert.deepEqual(session.tick(CONFIG.commandTimeoutMs * 2), [], "waiting on us is no client timeout");
    const after = session.learnReverseDns(PASS);
    assert.deepEqual(begun(after).map((e) => e.reverseDns), [PASS], split.name);
    assert.deepEqual(replies(after), ["354 End data with <CR><LF>.<CR><LF>\r\n"]);
    assert.equal(session.facts.fcrdns, "pass");
  }
});

test("content pipelined behind DATA is read once the answer is in; a timed-out lookup still lets the message through", () => {
  const session = new Session({ ...CONFIG, pipelining: true }, CLIENT, 0);
  session.start();
  assert.deepEqual(begun(session.receive(new TextEncoder().encode(`${ENVELOPE}DATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n`), 1)), []);
  const temperror: ReverseDns = { status: "temperror", reason: "timeout" };
  const after = session.learnReverseDns(temperror);
  assert.deepEqual(after.map((o) => o.type), ["message-begin", "reply", "message-data", "message-end"]);
  assert.deepEqual(begun(after)[0].reverseDns, temperror);
});

test("an answer before DATA means no wait; without start() nothing is awaited, and an answer nobody asked for is a bug of ours", () => {
  const early = new Session(CONFIG, CLIENT, 0);
  early.start();
  assert.deepEqual(early.learnReverseDns(PASS), []);
  assert.deepEqual(begun(early.receive(new TextEncoder().encode(`${ENVELOPE}DATA\r\n`), 1)).map((e) => e.reverseDns), [PASS]);
  const unasked = new Session(CONFIG, CLIENT, 0);
  assert.equal(begun(unasked.receive(new TextEncoder().encode(`${ENVELOPE}DATA\r\n`), 1)).length, 1);
  assert.throws(
    () => new Session(CONFIG, CLIENT, 0).learnReverseDns(PASS),
    /learnReverseDns\(\) called with the reverse DNS unasked: it was not asked for/,
  );
  assert.throws(() => early.learnReverseDns(PASS), /the reverse DNS known/, "answered twice");
});

test("relaying, the upstream's DATA is asked only once the answer is in", () => {
  const session = new Session({ ...CONFIG, relay: true }, CLIENT, 0);
  session.start();
  const enc = (s: string) => new TextEncoder().encode(s);
  session.receive(enc("EHLO c.example\r\n"), 0);
  session.receive(enc("MAIL FROM:<>\r\n"), 1);
  session.upstreamReplied({ code: 250, text: "250 2.1.0 Ok\r\n" }, 2);
  session.receive(enc("RCPT TO:<b@example.org>\r\n"), 3);
  session.upstreamReplied({ code: 250, text: "250 2.1.5 Ok\r\n" }, 4);
  assert.deepEqual(session.receive(enc("DATA\r\n"), 5), []);
  assert.deepEqual(session.learnReverseDns(PASS), [{ type: "upstream", command: "DATA" }]);
  const go = session.upstreamReplied({ code: 354, text: "354 go ahead\r\n" }, 6);
  assert.deepEqual(begun(go).map((e) => e.reverseDns), [PASS]);
});

test("a shutdown or a hang-up while DATA waits for the answer begins no message", () => {
  const stopping = new Session(CONFIG, CLIENT, 0);
  stopping.start();
  feed(stopping, whole(`${ENVELOPE}DATA\r\n`));
  assert.deepEqual(stopping.shutdown(), [], "the answer is awaited first, as any answer the session waits for");
  const after = stopping.learnReverseDns(PASS);
  assert.deepEqual(begun(after), []);
  assert.match(replies(after)[0], /^421 4\.3\.2 /);
  assert.ok(stopping.closed);

  const gone = new Session(CONFIG, CLIENT, 0);
  gone.start();
  feed(gone, whole(`${ENVELOPE}DATA\r\n`));
  assert.deepEqual(gone.clientClosed(), []);
  assert.deepEqual(gone.learnReverseDns(PASS), []);
  assert.equal(gone.facts.end, "client-closed");
});

test("a BDAT chunk that arrives while BDAT waits for the PTR answer is part of BDAT, not a command sent ahead of its reply", () => {
  const session = new Session(CONFIG, CLIENT, 0);
  session.start();
  const encoder = new TextEncoder();
  feed(session, byteByByte(`${ENVELOPE.replace("HELO", "EHLO")}BDAT 4 LAST\r\n`));
  assert.deepEqual(session.receive(encoder.encode("hi\r\n"), 1), [], "the chunk waits with its command");
  const after = session.learnReverseDns(PASS);
  assert.ok(after.some((o) => o.type === "message-end"));
  session.delivered({ ok: true, id: "ABC" }, 2);
  assert.deepEqual(replies(session.receive(encoder.encode("QUIT\r\n"), 3)), ["221 2.0.0 Bye\r\n"]);
  assert.deepEqual(session.facts.findings, []);
});
