import assert from "node:assert/strict";
import { ehloKeywordsOf, extensionsOf } from "../../src/delivery/ehlo-extensions.ts";
import { Session } from "../../src/smtp/session.ts";
import type { Output } from "../../src/smtp/types.ts";
import { test } from "../harness.ts";
import { CLIENT, CONFIG, lineByLine, play, transcript } from "./transcript.ts";

const RELAY = { ...CONFIG, relay: true, acceptDomains: [] };
const POSTFIX_EHLO =
  "250-upstream.test.example\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n";

/**
 * A relayed session whose upstream offers what `ehlo` says: every line is sent as its own read,
 * each question to the upstream answered `250 Ok`; returns the replies and what was asked.
 */
function relayed(lines: string, ehlo = POSTFIX_EHLO) {
  const session = new Session(RELAY, CLIENT, 0);
  session.learnUpstreamExtensions(extensionsOf(ehloKeywordsOf(ehlo)));
  const asked: string[] = [];
  let replies = "";
  const handle = (outputs: Output[]) => {
    for (const o of outputs) {
      if (o.type === "reply") replies += o.text;
      if (o.type === "lookup-mail-domain") handle(session.resolved({ status: "ok", records: ["mx.example.net"], ttl: 0 }, 1));
      if (o.type === "upstream") {
        asked.push(o.command);
        handle(session.upstreamReplied({ code: 250, text: "250 2.0.0 Ok\r\n" }, 1));
      }
    }
  };
  for (const chunk of lineByLine(lines)) handle(session.receive(chunk, 1));
  return { replies, asked };
}

test("EHLO keywords of an upstream: 8BITMIME, SMTPUTF8 and DSN are what it offers, the greeting line aside", () => {
  assert.deepEqual(extensionsOf(ehloKeywordsOf(POSTFIX_EHLO)), { eightBitMime: true, smtputf8: true, dsn: true, chunking: true });
  assert.deepEqual(extensionsOf(ehloKeywordsOf("250-DSN.example Hello\r\n250 SIZE 10\r\n")), {
    eightBitMime: false,
    smtputf8: false,
    dsn: false,
    chunking: false,
  });
});

test("relay: SMTPUTF8 and DSN are offered when the upstream offers them, and their parameters passed on as the client wrote them", () => {
  const { replies, asked } = relayed(
    "EHLO client.example\r\n" +
      "MAIL FROM:<jöe@exämple.net> SIZE=120 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ+2B314159\r\n" +
      "RCPT TO:<someone@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;someone+40example.org\r\n" +
      "RCPT TO:<ünïcode@example.org> NOTIFY=never\r\n",
  );
  assert.match(
    replies,
    /^250-mx\.test\.example Hello client\.example \[192\.0\.2\.1\]\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n250-CHUNKING\r\n250 ENHANCEDSTATUSCODES\r\n/,
  );
  assert.deepEqual(asked, [
    "MAIL FROM:<jöe@exämple.net> SIZE=120 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ+2B314159",
    "RCPT TO:<someone@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;someone+40example.org",
    "RCPT TO:<ünïcode@example.org> NOTIFY=NEVER",
  ]);
});

test("relay: an upstream without SMTPUTF8 or DSN, or not yet reached, gets neither offered nor their parameters; BODY only where it takes 8BITMIME", () => {
  for (const ehlo of ["250-upstream\r\n250 SIZE 1000\r\n", undefined]) {
    const session = new Session(RELAY, CLIENT, 0);
    if (ehlo !== undefined) session.learnUpstreamExtensions(extensionsOf(ehloKeywordsOf(ehlo)));
    const replies = session.receive(new TextEncoder().encode("EHLO client.example\r\n"), 1).map((o) => (o.type === "reply" ? o.text : ""))
      .join("");
    assert.doesNotMatch(replies, /SMTPUTF8|DSN/, `${ehlo}: ${replies}`);
  }
  const t = transcript(`
    C: EHLO client.example
    S: 250-mx.test.example Hello client.example [192.0.2.1]
    S: 250-SIZE 1000
    S: 250-8BITMIME
    S: 250 ENHANCEDSTATUSCODES
    C: MAIL FROM:<a@example.net> SMTPUTF8
    S: 555 5.5.4 Unsupported option: SMTPUTF8
    C: MAIL FROM:<a@example.net> RET=FULL
    S: 555 5.5.4 Unsupported option: RET
    C: MAIL FROM:<jöe@example.net>
    S: 553 5.6.7 Must declare SMTPUTF8 to send unicode address
    C: MAIL FROM:<a@example.net> BODY=8BITMIME
    S: 250 2.0.0 Ok
    C: RCPT TO:<someone@example.org> NOTIFY=SUCCESS
    S: 555 5.5.4 Unsupported option: NOTIFY
  `);
  const { replies, asked } = relayed(t.client, "250-upstream\r\n250 SIZE 1000\r\n");
  assert.equal(replies, t.server);
  assert.deepEqual(asked, ["MAIL FROM:<a@example.net>"], "BODY= is not sent to an upstream that does not offer 8BITMIME");
});

test("parameters: bad values get 501, a UTF-8 recipient needs SMTPUTF8 on its MAIL, undecodable bytes are refused", () => {
  const t = transcript(`
    C: EHLO client.example
    S: 250-mx.test.example Hello client.example [192.0.2.1]
    S: 250-SIZE 1000
    S: 250-8BITMIME
    S: 250-SMTPUTF8
    S: 250-DSN
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: MAIL FROM:<a@example.net> RET=ALL
    S: 501 5.5.4 Bad RET parameter syntax: ALL
    C: MAIL FROM:<a@example.net> SMTPUTF8=yes
    S: 501 5.5.4 Bad SMTPUTF8 parameter syntax: yes
    C: MAIL FROM:<a@example.net> ENVID=a=b
    S: 501 5.5.4 Bad ENVID parameter syntax: a=b
    C: MAIL FROM:<a@example.net>
    S: 250 2.0.0 Ok
    C: RCPT TO:<ü@example.org>
    S: 553 5.6.7 Must declare SMTPUTF8 to send unicode address
    C: RCPT TO:<someone@example.org> NOTIFY=NEVER,SUCCESS
    S: 501 5.5.4 Bad NOTIFY parameter syntax: NEVER,SUCCESS
    C: RCPT TO:<someone@example.org> ORCPT=someone@example.org
    S: 501 5.5.4 Bad ORCPT parameter syntax: someone@example.org
  `);
  assert.equal(relayed(t.client).replies, t.server);
  const latin1 = Uint8Array.from([
    ...new TextEncoder().encode("EHLO c.example\r\nMAIL FROM:<j"),
    0xf6,
    ...new TextEncoder().encode("e@example.net> SMTPUTF8\r\n"),
  ]);
  const session = new Session(RELAY, CLIENT, 0);
  session.learnUpstreamExtensions(extensionsOf(ehloKeywordsOf(POSTFIX_EHLO)));
  const replies = session.receive(latin1, 1).map((o) => (o.type === "reply" ? o.text : "")).join("");
  assert.match(replies, /553 5\.6\.7 Malformed UTF-8 in the address\r\n$/);
});

test("spool: SMTPUTF8 is offered and a UTF-8 envelope spooled as it came; DSN is not offered (the spool sends none)", () => {
  const played = play(
    lineByLine(
      "EHLO client.example\r\nMAIL FROM:<jöe@example.net> SMTPUTF8\r\nRCPT TO:<ü@example.org>\r\nDATA\r\nSubject: ü\r\n\r\nbody\r\n.\r\nMAIL FROM:<a@example.net> RET=FULL\r\n",
    ),
  );
  assert.match(played.replies, /250-SMTPUTF8\r\n/);
  assert.doesNotMatch(played.replies, /DSN/);
  assert.match(played.replies, /250 2\.0\.0 Ok: queued as Q1\r\n555 5\.5\.4 Unsupported option: RET\r\n$/);
  const begin = played.outputs.find((o) => o.type === "message-begin");
  assert.ok(begin?.type === "message-begin");
  assert.equal(begin.envelope.from, "jöe@example.net");
  assert.deepEqual(begin.envelope.recipients, ["ü@example.org"]);
});
