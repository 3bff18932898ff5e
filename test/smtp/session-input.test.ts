import assert from "node:assert/strict";
import { MAX_WAITING_INPUT, Session } from "../../src/smtp/session.ts";
import type { Output } from "../../src/smtp/types.ts";
import { test } from "../harness.ts";
import { CLIENT, CONFIG } from "./transcript.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const replies = (outputs: Output[]) =>
  outputs.flatMap((o) => (o.type === "reply" ? [o.text] : o.type === "close" ? ["<close>"] : [])).join("");
const RELAY = { ...CONFIG, relay: true };

function inData(config = CONFIG): Session {
  const session = new Session(config, CLIENT, 0);
  session.receive(bytes("HELO client.example\r\nMAIL FROM:<>\r\n"), 1);
  session.receive(bytes("RCPT TO:<someone@example.org>\r\n"), 1);
  session.receive(bytes("DATA\r\n"), 1);
  return session;
}

test("half-close after . and QUIT: the 250 and the 221 are still sent, then the close", () => {
  const session = inData();
  const atDot = session.receive(bytes("Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n"), 2);
  assert.ok(atDot.some((o) => o.type === "message-end"));
  assert.equal(session.waiting, true);
  assert.deepEqual(session.inputEnded(3), [], "nothing is said before the delivery's outcome");
  const after = session.delivered({ ok: true, id: "Q1" }, 4);
  assert.equal(replies(after), "250 2.0.0 Ok: queued as Q1\r\n221 2.0.0 Bye\r\n<close>");
  assert.equal(session.facts.end, "quit");
});

test("half-close after . without QUIT: the 250, then the close; a half-close mid-message drops the message", () => {
  const session = inData();
  session.receive(bytes("body\r\n.\r\n"), 2);
  session.inputEnded(3);
  assert.equal(replies(session.delivered({ ok: true, id: "Q2" }, 4)), "250 2.0.0 Ok: queued as Q2\r\n<close>");
  assert.equal(session.facts.end, "client-closed");
  const cut = inData();
  cut.receive(bytes("half a message\r\n"), 2);
  const outputs = cut.inputEnded(3);
  assert.deepEqual(outputs.map((o) => o.type), ["message-abort", "close"]);
});

test("a session waiting for DNS is not reading; input past MAX_WAITING_INPUT gets 421 and the close", () => {
  const session = new Session(CONFIG, CLIENT, 0);
  session.receive(bytes("HELO client.example\r\n"), 1);
  const asked = session.receive(bytes("MAIL FROM:<a@slow.example>\r\n"), 1);
  assert.ok(asked.some((o) => o.type === "lookup-mail-domain"));
  assert.equal(session.waiting, true);
  const chunk = bytes("NOOP\r\n".repeat(10_000));
  let outputs: Output[] = [];
  for (let sent = 0; sent <= MAX_WAITING_INPUT && !session.closed; sent += chunk.length) outputs = session.receive(chunk, 2);
  assert.match(replies(outputs), /^421 4\.7\.0 .*too much input.*\r\n<close>$/);
  assert.deepEqual(
    session.resolved({ status: "ok", records: ["mx.slow.example"], ttl: 60 }, 3),
    [],
    "a late answer to a closed session is dropped",
  );
});

test("answers that arrive after the client went away are dropped, never thrown", () => {
  const upstream = new Session(RELAY, CLIENT, 0);
  upstream.receive(bytes("HELO client.example\r\n"), 1);
  assert.ok(upstream.receive(bytes("MAIL FROM:<>\r\n"), 1).some((o) => o.type === "upstream"));
  upstream.clientClosed();
  assert.deepEqual(upstream.upstreamReplied({ code: 250, text: "250 Ok\r\n" }, 2), []);
  const delivering = inData();
  delivering.receive(bytes(".\r\n"), 2);
  delivering.clientClosed();
  assert.deepEqual(delivering.delivered({ ok: true, id: "Q3" }, 3), []);
});

test("a refused MAIL, RCPT or message is a refused fact with its envelope and reply; an accepted one, or a later 421, is not", () => {
  const session = new Session(CONFIG, CLIENT, 0);
  session.receive(bytes("HELO client.example\r\nMAIL FROM:<>\r\n"), 1);
  const outputs = session.receive(bytes("RCPT TO:<b@elsewhere.example>\r\n"), 1);
  const refused = outputs.filter((o) => o.type === "refused");
  assert.deepEqual(refused, [{
    type: "refused",
    stage: "RCPT",
    from: "",
    to: "b@elsewhere.example",
    reply: "554 5.7.1 <b@elsewhere.example>: Relay access denied",
  }]);
  assert.deepEqual(session.receive(bytes("RCPT TO:<b@example.org>\r\n"), 2).filter((o) => o.type === "refused"), []);
  assert.deepEqual(session.tick(10_000_000).filter((o) => o.type === "refused"), [], "the timeout's 421 refuses no command");
});
