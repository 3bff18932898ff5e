import assert from "node:assert/strict";
import { Session } from "../../src/smtp/session.ts";
import type { Output } from "../../src/smtp/types.ts";
import { test } from "../harness.ts";
import { CLIENT, lineByLine, play, STRICT } from "../smtp/transcript.ts";

const encoder = new TextEncoder();

/** Feeds one socket read per call, as the runner does (pipelining is about read boundaries); sender domains have an MX. */
function reads(config: typeof STRICT, ...chunks: string[]): { replies: string[]; outputs: Output[]; session: Session } {
  const session = new Session(config, CLIENT, 0);
  const outputs: Output[] = [];
  const take = (out: Output[]) => {
    for (const o of out) {
      outputs.push(o);
      if (o.type === "lookup-mail-domain") take(session.resolved({ status: "ok", records: [`mx.${o.domain}`], ttl: 0 }, 1));
    }
  };
  for (const chunk of chunks) take(session.receive(encoder.encode(chunk), 1));
  const replies = outputs.filter((o) => o.type === "reply").map((o) => (o as { text: string }).text);
  return { replies, outputs, session };
}

const SYNC = "554 5.5.0 mx.test.example Error: SMTP protocol synchronization; closing\r\n";

test("pipelining not offered: a command sent with the next one in the same read gets 554 and close, none of it acted on", () => {
  const { replies, outputs, session } = reads(
    STRICT,
    "EHLO client.example\r\n",
    "MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: spam\r\n\r\n.\r\n",
  );
  assert.equal(replies.length, 2);
  assert.equal(replies[1], SYNC);
  assert.ok(!outputs.some((o) => o.type === "message-begin"), "no message was begun");
  assert.equal(session.facts.transactions, 0, "MAIL was not accepted");
  assert.deepEqual(session.facts.findings.map((f) => [f.tag, f.evidence.command, f.evidence.offered]), [["PIPELINING", "MAIL", false]]);
  assert.match(String(session.facts.findings[0].evidence.ahead), /^RCPT TO:/, "what it pushed ahead is the evidence");
  assert.ok(session.closed);
});

test("pipelining: the same commands one read each pass (the client waited for every reply)", () => {
  const { replies, session } = play(
    lineByLine("EHLO client.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n"),
    STRICT,
  );
  assert.match(replies, /221 2\.0\.0 Bye\r\n$/);
  assert.equal(session.facts.findings.length, 0);
  assert.equal(session.facts.messages, 1);
});

test("pipelining offered (MXSCREEN_PIPELINING=true): MAIL, RCPT and DATA in one read are fine (RFC 2920)", () => {
  const config = { ...STRICT, pipelining: true };
  const { replies, outputs, session } = reads(
    config,
    "EHLO client.example\r\n",
    "MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n",
  );
  assert.deepEqual(replies.slice(1), ["250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n"]);
  assert.ok(outputs.some((o) => o.type === "message-begin"));
  assert.equal(session.facts.findings.length, 0);
});

test("pipelining offered: content sent with DATA before the 354 is a violation (DATA must end a group)", () => {
  const config = { ...STRICT, pipelining: true };
  const { replies, outputs } = reads(
    config,
    "EHLO client.example\r\n",
    "MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: x\r\n\r\nspam\r\n.\r\n",
  );
  assert.deepEqual(replies.slice(1), ["250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n", SYNC]);
  assert.ok(!outputs.some((o) => o.type === "message-begin"));
});

test("pipelining offered: EHLO with MAIL in the same read is a violation (EHLO must end a group)", () => {
  const { replies } = reads({ ...STRICT, pipelining: true }, "EHLO client.example\r\nMAIL FROM:<a@example.net>\r\n");
  assert.deepEqual(replies, [SYNC]);
});

test("pipelining offered after EHLO does not extend to a HELO session", () => {
  const { replies } = reads(
    { ...STRICT, pipelining: true },
    "HELO client.example\r\n",
    "MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n",
  );
  assert.deepEqual(replies, ["250 mx.test.example Hello client.example [192.0.2.1]\r\n", SYNC]);
});

test("a partial next line in the same read counts too; the same bytes split at the line end do not", () => {
  assert.deepEqual(reads(STRICT, "NOOP\r\nNO").replies, [SYNC]);
  assert.deepEqual(reads(STRICT, "NOOP\r\n", "NO", "OP\r\n").replies, ["250 2.0.0 Ok\r\n", "250 2.0.0 Ok\r\n"]);
});

test("pipelining with action ignore: logged, every command answered", () => {
  const { replies, session } = reads({ ...STRICT, actions: { pipelining: "ignore" } }, "NOOP\r\nNOOP\r\n");
  assert.deepEqual(replies, ["250 2.0.0 Ok\r\n", "250 2.0.0 Ok\r\n"]);
  assert.deepEqual(session.facts.findings.map((f) => [f.tag, f.action]), [["PIPELINING", "ignore"]]);
});

test("a command that arrives while the one before waits for DNS was sent before its reply: a violation unless PIPELINING allows the pair", () => {
  for (const pipelining of [false, true]) {
    const session = new Session({ ...STRICT, pipelining }, CLIENT, 0);
    session.receive(encoder.encode("EHLO client.example\r\n"), 1);
    const asked = session.receive(encoder.encode("MAIL FROM:<a@example.net>\r\n"), 1);
    assert.ok(asked.some((o) => o.type === "lookup-mail-domain"), "MAIL waits for the sender domain's DNS");
    assert.deepEqual(session.receive(encoder.encode("RCPT TO:<b@example.org>\r\n"), 1), [], "nothing is answered while it waits");
    const replies = session.resolved({ status: "ok", records: ["mx.example.net"], ttl: 0 }, 2)
      .filter((o) => o.type === "reply").map((o) => (o as { text: string }).text);
    if (pipelining) {
      assert.deepEqual(replies, ["250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n"], "MAIL and RCPT are a group (RFC 2920)");
      assert.equal(session.facts.findings.length, 0);
    } else {
      assert.deepEqual(replies, ["250 2.1.0 Ok\r\n", SYNC]);
      assert.deepEqual(session.facts.findings.map((f) => [f.tag, f.evidence.command, f.evidence.ahead]), [[
        "PIPELINING",
        "MAIL",
        "RCPT TO:<b@example.org>",
      ]]);
    }
  }
});

test("what a client sends after a message's end while it is delivered is not judged, as when it comes in the same read", () => {
  const session = new Session(STRICT, CLIENT, 0);
  const take = (out: Output[]) =>
    out.flatMap((o): Output[] =>
      o.type === "lookup-mail-domain" ? session.resolved({ status: "ok", records: ["mx.example.net"], ttl: 0 }, 1) : [o]
    );
  for (const line of ["EHLO client.example\r\n", "MAIL FROM:<a@example.net>\r\n", "RCPT TO:<b@example.org>\r\n", "DATA\r\n"]) {
    take(session.receive(encoder.encode(line), 1));
  }
  assert.ok(take(session.receive(encoder.encode("hi\r\n.\r\n"), 1)).some((o) => o.type === "message-end"));
  assert.deepEqual(session.receive(encoder.encode("QUIT\r\n"), 1), [], "QUIT waits for the delivery");
  const replies = session.delivered({ ok: true, id: "ABC" }, 2).filter((o) => o.type === "reply").map((o) => (o as { text: string }).text);
  assert.deepEqual(replies, ["250 2.0.0 Ok: queued as ABC\r\n", "221 2.0.0 Bye\r\n"]);
  assert.equal(session.facts.findings.length, 0);
});
