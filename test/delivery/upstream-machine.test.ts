import assert from "node:assert/strict";
import { type UpstreamAnswer, UpstreamMachine, type UpstreamOutput, type UpstreamSettings } from "../../src/delivery/upstream-machine.ts";
import { test } from "../harness.ts";

const SETTINGS: UpstreamSettings = {
  name: "mta.test:25",
  identity: "xclient",
  timeoutMs: 1_000,
  dataEndTimeoutMs: 600_000,
  hostname: "mx.test",
  tls: "off",
};
const CLIENT = {
  address: "192.0.2.7",
  port: 4000,
  local: { address: "198.51.100.25", port: 25 },
  helo: "client.example",
  name: undefined,
  protocol: "ESMTP",
};
const bytes = (text: string) => new TextEncoder().encode(text);
const decoder = new TextDecoder("latin1");

/** Drives a machine and keeps what it wrote and answered. */
function driven(settings: Partial<UpstreamSettings> = {}) {
  const machine = new UpstreamMachine({ ...SETTINGS, ...settings }, CLIENT, 0);
  const written: string[] = [];
  const answers: UpstreamAnswer[] = [];
  const closes: boolean[] = [];
  const reconnects: string[] = [];
  let starttls = 0;
  const take = (outputs: UpstreamOutput[]) => {
    for (const output of outputs) {
      if (output.type === "write") written.push(decoder.decode(output.bytes));
      else if (output.type === "answer") answers.push(output.answer);
      else if (output.type === "close") closes.push(output.graceful);
      else if (output.type === "reconnect") reconnects.push(output.reason);
      else starttls++;
    }
  };
  return {
    machine,
    written,
    answers,
    closes,
    reconnects,
    starttls: () => starttls,
    take,
    say: (text: string, now = 1) => take(machine.received(bytes(text), now)),
  };
}

/** Up to ready: greeting, EHLO, XCLIENT, EHLO again. */
function ready() {
  const d = driven();
  d.take(d.machine.connected(0));
  d.say("220 mta ESMTP\r\n");
  d.say("250-mta\r\n250 XCLIENT ADDR PORT NAME HELO PROTO\r\n");
  d.say("220 mta ESMTP\r\n");
  d.say("250 mta\r\n");
  return d;
}

test("upstream machine: the handshake introduces the client with XCLIENT, then asks one question at a time", () => {
  const d = driven();
  d.take(d.machine.ask("MAIL FROM:<a@example.net>", 0));
  assert.deepEqual(d.written, [], "nothing is asked before the connection is up");
  d.take(d.machine.connected(0));
  d.say("220 mta ESMTP\r\n");
  d.say("250-mta\r\n250 XCLIENT ADDR PORT NAME HELO PROTO\r\n");
  assert.equal(d.written.at(-1), "XCLIENT ADDR=192.0.2.7 PORT=4000 NAME=[UNAVAILABLE] HELO=client.example PROTO=ESMTP\r\n");
  assert.equal(d.written[0], "EHLO mx.test\r\n", "before XCLIENT, we introduce ourselves");
  d.say("220 mta ESMTP\r\n");
  assert.equal(
    d.written.at(-1),
    "EHLO client.example\r\n",
    "after XCLIENT, the client's own HELO name: Postfix records the EHLO's name as the client's",
  );
  d.say("250 mta\r\n");
  assert.equal(d.written.at(-1), "MAIL FROM:<a@example.net>\r\n");
  d.take(d.machine.ask("RCPT TO:<b@example.org>", 2));
  assert.equal(d.written.at(-1), "MAIL FROM:<a@example.net>\r\n", "the next question waits for the answer");
  d.say("250 2.1.0 Ok\r\n");
  assert.equal(d.written.at(-1), "RCPT TO:<b@example.org>\r\n");
  d.say("550 5.1.1 unknown\r\n");
  assert.deepEqual(d.answers.map((a) => a.ok && a.reply.code), [250, 550]);
});

test("upstream machine: a PROXY v2 header names the client and the address it connected to, not our own socket", () => {
  const d = driven({ identity: "proxy" });
  d.take(d.machine.connected(0));
  const latin = Uint8Array.from(d.written[0], (c) => c.charCodeAt(0));
  assert.deepEqual([...latin.subarray(16, 20)], [192, 0, 2, 7]);
  assert.deepEqual([...latin.subarray(20, 24)], [198, 51, 100, 25]);
  assert.equal((latin[26] << 8) | latin[27], 25);
});

test("upstream machine: every fault at every step answers each open question once, with a reason, and closes", () => {
  const steps: { name: string; to: (d: ReturnType<typeof driven>) => void }[] = [
    { name: "connect", to: () => {} },
    { name: "greeting", to: (d) => d.take(d.machine.connected(0)) },
    { name: "EHLO", to: (d) => (d.take(d.machine.connected(0)), d.say("220 mta\r\n")) },
    { name: "XCLIENT", to: (d) => (d.take(d.machine.connected(0)), d.say("220 mta\r\n"), d.say("250 XCLIENT ADDR\r\n")) },
    {
      name: "MAIL",
      to: (
        d,
      ) => (d.take(d.machine.connected(0)),
        d.say("220 mta\r\n"),
        d.say("250 XCLIENT ADDR\r\n"),
        d.say("220 mta\r\n"),
        d.say("250 mta\r\n")),
    },
  ];
  const faults: { name: string; hit: (d: ReturnType<typeof driven>) => void; reason: RegExp }[] = [
    { name: "refused or reset", hit: (d) => d.take(d.machine.lost("ECONNRESET", 1)), reason: /ECONNRESET/ },
    { name: "stall", hit: (d) => d.take(d.machine.tick(60_000)), reason: /within 1000 ms/ },
    { name: "nonsense", hit: (d) => d.say("HTTP/1.1 400 Bad Request\r\n"), reason: /not an SMTP reply/ },
    { name: "421", hit: (d) => d.say("421 4.3.2 going down\r\n"), reason: /421|greeted|answered|refused|closing/ },
  ];
  for (const step of steps) {
    for (const fault of faults) {
      const d = driven();
      d.take(d.machine.ask("MAIL FROM:<a@example.net>", 0));
      step.to(d);
      fault.hit(d);
      const label = `${fault.name} at ${step.name}`;
      assert.equal(d.answers.length, 1, `${label}: one answer`);
      const answer = d.answers[0];
      if (answer.ok) assert.equal(answer.reply.code, 421, label);
      else assert.match(answer.reason, fault.reason, label);
      d.take(d.machine.lost("closed the connection", 1));
      d.take(d.machine.ask("RCPT TO:<b@example.org>", 1));
      assert.equal(d.answers.length, 2, `${label}: a later question is answered at once`);
      assert.equal(d.answers[1].ok, false, label);
      assert.equal(d.closes.length, 1, `${label}: closed once`);
    }
  }
});

test("upstream machine: the answer to the final dot may take RFC 5321's 10 minutes, other answers the timeout", () => {
  const d = ready();
  d.take(d.machine.ask("DATA", 10));
  d.say("354 go ahead\r\n", 20);
  d.take(d.machine.data(bytes(".leading dot\r\n")));
  assert.equal(d.written.at(-1), "..leading dot\r\n");
  d.take(d.machine.endData(30));
  assert.deepEqual(d.machine.tick(30 + 5_000), [], "5 s after the dot is not a timeout");
  d.take(d.machine.tick(30 + 600_000));
  assert.equal(d.answers.at(-1)?.ok, false);
  assert.match(d.answers.at(-1)!.ok ? "" : (d.answers.at(-1) as { reason: string }).reason, /within 600000 ms/);
});

test("upstream machine: RSET is nobody's question, and a reply nobody asked for ends the connection", () => {
  const d = ready();
  d.take(d.machine.reset(5));
  assert.equal(d.written.at(-1), "RSET\r\n");
  d.say("250 Ok\r\n");
  assert.equal(d.answers.length, 0);
  d.say("250 Ok\r\n");
  assert.equal(d.closes.length, 1);
  assert.equal(d.machine.failed?.includes("nobody asked for"), true);
});

test("upstream machine: QUIT when idle is graceful; a quit mid-question answers it", () => {
  const idle = ready();
  idle.take(idle.machine.quit());
  assert.equal(idle.written.at(-1), "QUIT\r\n");
  assert.deepEqual(idle.closes, [true]);
  const busy = ready();
  busy.take(busy.machine.ask("MAIL FROM:<a@example.net>", 1));
  busy.take(busy.machine.quit());
  assert.deepEqual(busy.closes, [false]);
  assert.equal(busy.answers.length, 1);
  assert.equal(busy.answers[0].ok, false);
});

const NEXT = { ...CLIENT, address: "203.0.113.9", port: 5000, helo: "next.example" };

/** A ready connection that carried one whole message for CLIENT. */
function afterOneMessage(settings: Partial<UpstreamSettings> = {}) {
  const d = driven(settings);
  d.take(d.machine.connected(0));
  d.say("220 mta ESMTP\r\n");
  d.say("250-mta\r\n250 XCLIENT ADDR PORT NAME HELO PROTO\r\n");
  if (d.machine.usesXclient) d.say("220 mta ESMTP\r\n"), d.say("250 mta\r\n");
  d.take(d.machine.ask("MAIL FROM:<a@example.net>", 2));
  d.say("250 2.1.0 Ok\r\n");
  return finishMessage(d);
}

/** The rest of a message after its MAIL's 250: one recipient, the data, Postfix's 250 for it. */
function finishMessage(d: ReturnType<typeof driven>) {
  for (const [line, reply] of [["RCPT TO:<b@example.org>", "250 2.1.5 Ok"], ["DATA", "354 go ahead"]]) {
    d.take(d.machine.ask(line, 2));
    d.say(`${reply}\r\n`);
  }
  d.take(d.machine.endData(3));
  d.say("250 2.0.0 Ok: queued as 1A2B\r\n");
  return d;
}

test("upstream machine: a connection is reusable only idle, outside a transaction, and never after a PROXY header", () => {
  const d = afterOneMessage();
  assert.equal(d.machine.reusable, true, "after the final dot's answer");
  d.take(d.machine.ask("MAIL FROM:<c@example.net>", 4));
  assert.equal(d.machine.reusable, false, "a question is open");
  d.say("250 2.1.0 Ok\r\n");
  assert.equal(d.machine.reusable, false, "a transaction is open");
  d.take(d.machine.reset(5));
  d.say("250 2.0.0 Ok\r\n");
  assert.equal(d.machine.reusable, true, "RSET ended it");
  // Postfix counts refusals and junk commands against the connection until it accepts a message.
  d.take(d.machine.reset(6));
  d.say("250 2.0.0 Ok\r\n");
  assert.equal(d.machine.reusable, false, "a second junk command (EHLO, RSET, NOOP, …) since the last message");
  d.take(d.machine.ask("MAIL FROM:<c@example.net>", 6));
  d.say("250 2.1.0 Ok\r\n");
  finishMessage(d);
  assert.equal(d.machine.reusable, true, "forgiven by a message accepted");
  d.take(d.machine.ask("MAIL FROM:<c@example.net>", 6));
  d.say("550 5.7.1 no\r\n");
  assert.equal(d.machine.reusable, false, "a refused MAIL opens no transaction, but it is a refusal");
  const spoiled = afterOneMessage();
  spoiled.take(spoiled.machine.reset(7));
  spoiled.say("500 what\r\n");
  spoiled.take(spoiled.machine.ask("MAIL FROM:<c@example.net>", 8));
  spoiled.say("250 2.1.0 Ok\r\n");
  finishMessage(spoiled);
  assert.equal(spoiled.machine.reusable, false, "an RSET refused: never trusted with another client");
  assert.equal(afterOneMessage({ identity: "proxy" }).machine.reusable, false);
  const closing = afterOneMessage();
  closing.take(closing.machine.ask("MAIL FROM:<c@example.net>", 4));
  closing.say("421 4.3.2 shutting down\r\n");
  assert.equal(closing.machine.reusable, false, "421");
  const chatty = afterOneMessage();
  chatty.say("250 nobody asked\r\n");
  assert.equal(chatty.machine.reusable, false, "a reply out of turn");
});

test("upstream machine: QUIT follows an RSET still unanswered where the upstream offers PIPELINING; without it the connection is closed", () => {
  for (const pipelining of [true, false]) {
    const d = driven({ identity: "none" });
    d.take(d.machine.connected(0));
    d.say("220 mta ESMTP\r\n");
    d.say(pipelining ? "250-mta\r\n250 PIPELINING\r\n" : "250 mta\r\n");
    d.take(d.machine.ask("MAIL FROM:<a@example.net>", 2));
    d.say("250 2.1.0 Ok\r\n");
    d.take(d.machine.reset(3));
    d.take(d.machine.quit());
    assert.deepEqual(d.written.slice(-2), pipelining ? ["RSET\r\n", "QUIT\r\n"] : ["MAIL FROM:<a@example.net>\r\n", "RSET\r\n"]);
    assert.deepEqual(d.closes, [pipelining], pipelining ? "closed once the QUIT is written" : "closed at once");
  }
});

test("upstream machine: a connection handed over introduces the next client with XCLIENT, EHLO again, then asks its questions", () => {
  const d = afterOneMessage();
  d.take(d.machine.introduce(NEXT, 10));
  d.take(d.machine.ask("MAIL FROM:<n@example.net>", 10));
  assert.equal(
    d.written.at(-1),
    "XCLIENT ADDR=203.0.113.9 PORT=5000 NAME=[UNAVAILABLE] HELO=next.example PROTO=ESMTP\r\n",
    "MAIL waits for the introduction",
  );
  d.say("220 mta ESMTP\r\n", 11);
  assert.equal(d.written.at(-1), "EHLO next.example\r\n", "the EHLO after XCLIENT names the new client: Postfix takes its name over HELO=");
  d.say("250 mta\r\n", 12);
  assert.equal(d.written.at(-1), "MAIL FROM:<n@example.net>\r\n");
  d.say("250 2.1.0 Ok\r\n", 13);
  assert.deepEqual(d.answers.map((a) => a.ok && a.reply.code), [250, 250, 354, 250, 250]);
  assert.deepEqual(d.reconnects, []);
  const plain = afterOneMessage({ identity: "none" });
  plain.take(plain.machine.introduce(NEXT, 10));
  assert.equal(plain.written.at(-1), "RSET\r\n", "no identity to send: an RSET proves the connection alive");
  plain.take(plain.machine.ask("MAIL FROM:<n@example.net>", 10));
  plain.say("250 2.0.0 Ok\r\n", 11);
  assert.equal(plain.written.at(-1), "MAIL FROM:<n@example.net>\r\n");
});

test("upstream machine: a handed-over connection that fails before serving its new client is replaced, and the client's question waits", () => {
  const faults: { name: string; hit: (d: ReturnType<typeof driven>) => void }[] = [
    { name: "closed", hit: (d) => d.take(d.machine.lost("closed the connection", 11)) },
    { name: "timed out", hit: (d) => d.take(d.machine.tick(10 + 1_000)) },
    { name: "421 (its own idle timeout)", hit: (d) => d.say("421 4.4.2 mta Error: timeout exceeded\r\n", 11) },
    { name: "nonsense", hit: (d) => d.say("HTTP/1.1 400\r\n", 11) },
  ];
  for (const identity of ["xclient", "none"] as const) {
    for (const fault of faults) {
      const label = `${identity}, ${fault.name}`;
      const d = afterOneMessage({ identity });
      d.take(d.machine.introduce(NEXT, 10));
      d.take(d.machine.ask("MAIL FROM:<n@example.net>", 10));
      fault.hit(d);
      assert.equal(d.answers.length, 4, `${label}: the question is not answered with the failure`);
      assert.deepEqual(d.closes, [false], `${label}: the old connection is closed`);
      assert.equal(d.reconnects.length, 1, `${label}: a new one is asked for`);
      assert.equal(d.machine.failed, undefined, label);
      d.take(d.machine.connected(12));
      d.say("220 mta ESMTP\r\n", 13);
      d.say("250-mta\r\n250 XCLIENT ADDR\r\n", 13);
      if (identity === "xclient") {
        assert.match(d.written.at(-1)!, /^XCLIENT ADDR=203\.0\.113\.9 /, `${label}: the new connection introduces the new client`);
        d.say("220 mta ESMTP\r\n", 14);
        d.say("250 mta\r\n", 14);
      }
      assert.equal(d.written.at(-1), "MAIL FROM:<n@example.net>\r\n", label);
      d.take(d.machine.lost("reset", 15));
      assert.equal(d.answers.length, 5, `${label}: a fault on the new connection is the question's answer`);
      assert.equal(d.answers[4].ok, false, label);
      assert.equal(d.reconnects.length, 1, `${label}: one new connection, no more`);
    }
  }
});

test("upstream machine: an upstream refusing XCLIENT for a second client on one connection is told apart, and the new connection is not reused", () => {
  const d = afterOneMessage();
  d.take(d.machine.introduce(NEXT, 10));
  d.take(d.machine.ask("MAIL FROM:<n@example.net>", 10));
  d.say("550 5.7.0 Error: insufficient authorization\r\n", 11);
  assert.equal(d.machine.refusesSecondXclient, true);
  assert.equal(d.reconnects.length, 1);
  assert.match(d.reconnects[0], /second client/);
  d.take(d.machine.connected(12));
  d.say("220 mta ESMTP\r\n", 13);
  d.say("250 XCLIENT ADDR\r\n", 13);
  d.say("220 mta ESMTP\r\n", 14);
  d.say("250 mta\r\n", 14);
  d.say("250 2.1.0 Ok\r\n", 15);
  assert.equal(d.answers.at(-1)?.ok, true);
  d.take(d.machine.reset(16));
  d.say("250 2.0.0 Ok\r\n", 16);
  assert.equal(d.machine.reusable, false, "idle, but XCLIENT would be refused on it too");
});

test("upstream machine: STARTTLS when offered (may), then EHLO again inside TLS before XCLIENT; never with off", () => {
  const d = driven({ tls: "may" });
  d.take(d.machine.ask("MAIL FROM:<a@example.net>", 0));
  d.take(d.machine.connected(0));
  d.say("220 mta ESMTP\r\n");
  d.say("250-mta\r\n250-STARTTLS\r\n250 XCLIENT ADDR PORT NAME HELO PROTO\r\n");
  assert.equal(d.written.at(-1), "STARTTLS\r\n");
  d.say("220 2.0.0 Ready to start TLS\r\n");
  assert.equal(d.starttls(), 1, "the socket is asked to start TLS");
  assert.equal(d.written.at(-1), "STARTTLS\r\n", "nothing is written during the handshake");
  d.take(d.machine.tlsStarted(undefined, 2));
  assert.equal(d.written.at(-1), "EHLO mx.test\r\n", "RFC 3207: EHLO again inside TLS");
  d.say("250-mta\r\n250 XCLIENT ADDR PORT NAME HELO PROTO\r\n");
  assert.match(d.written.at(-1)!, /^XCLIENT ADDR=192\.0\.2\.7 /);
  d.say("220 mta ESMTP\r\n");
  assert.equal(d.written.at(-1), "EHLO client.example\r\n");
  d.say("250 mta\r\n");
  assert.equal(d.written.at(-1), "MAIL FROM:<a@example.net>\r\n");
  assert.equal(d.machine.tls, true);

  const off = driven({ tls: "off" });
  off.take(off.machine.connected(0));
  off.say("220 mta ESMTP\r\n");
  off.say("250-mta\r\n250-STARTTLS\r\n250 XCLIENT ADDR\r\n");
  assert.match(off.written.at(-1)!, /^XCLIENT /);
  assert.equal(off.starttls(), 0);
});

test("upstream machine: with may, no STARTTLS offered or STARTTLS refused goes on in plaintext; with verify either fails the connection", () => {
  for (const tls of ["may", "verify"] as const) {
    const missing = driven({ tls });
    missing.take(missing.machine.ask("MAIL FROM:<a@example.net>", 0));
    missing.take(missing.machine.connected(0));
    missing.say("220 mta ESMTP\r\n");
    missing.say("250-mta\r\n250 XCLIENT ADDR\r\n");
    const refused = driven({ tls });
    refused.take(refused.machine.ask("MAIL FROM:<a@example.net>", 0));
    refused.take(refused.machine.connected(0));
    refused.say("220 mta ESMTP\r\n");
    refused.say("250-mta\r\n250-STARTTLS\r\n250 XCLIENT ADDR\r\n");
    refused.say("454 4.7.0 TLS not available due to local problem\r\n");
    if (tls === "may") {
      assert.match(missing.written.at(-1)!, /^XCLIENT /);
      assert.match(refused.written.at(-1)!, /^XCLIENT /, "the EHLO before STARTTLS still says XCLIENT is offered");
      assert.deepEqual([...missing.answers, ...refused.answers], []);
    } else {
      assert.deepEqual(missing.answers, [{
        ok: false,
        reason: "mta.test:25 does not offer STARTTLS, which MXSCREEN_UPSTREAM_TLS=verify requires",
      }]);
      assert.deepEqual(refused.answers, [{
        ok: false,
        reason: "mta.test:25 refused STARTTLS: 454 4.7.0 TLS not available due to local problem",
      }]);
      assert.deepEqual([...missing.closes, ...refused.closes], [false, false]);
    }
  }
});

test("upstream machine: a failed TLS handshake, or one that takes past the timeout, answers the question with why and closes", () => {
  const start = (d: ReturnType<typeof driven>) => {
    d.take(d.machine.ask("MAIL FROM:<a@example.net>", 0));
    d.take(d.machine.connected(0));
    d.say("220 mta ESMTP\r\n");
    d.say("250-mta\r\n250 STARTTLS\r\n");
    d.say("220 go ahead\r\n");
  };
  const failed = driven({ tls: "verify" });
  start(failed);
  failed.take(failed.machine.tlsStarted("Hostname/IP does not match certificate's altnames", 2));
  assert.deepEqual(failed.answers, [{
    ok: false,
    reason: "TLS handshake with mta.test:25 failed: Hostname/IP does not match certificate's altnames",
  }]);
  assert.deepEqual(failed.closes, [false]);
  const stalled = driven({ tls: "may" });
  start(stalled);
  assert.equal(stalled.machine.deadline, 1 + 1_000);
  stalled.take(stalled.machine.tick(1_001));
  assert.deepEqual(stalled.answers, [{ ok: false, reason: "mta.test:25 did not answer within 1000 ms" }]);
});

test("upstream machine: under may, a failed TLS handshake costs a connection, not the question: the next goes on without STARTTLS", () => {
  const d = driven({ tls: "may" });
  d.take(d.machine.ask("MAIL FROM:<a@example.net>", 0));
  d.take(d.machine.connected(0));
  d.say("220 mta ESMTP\r\n");
  d.say("250-mta\r\n250-STARTTLS\r\n250 XCLIENT ADDR\r\n");
  d.say("220 go ahead\r\n");
  d.take(d.machine.tlsStarted("wrong version number", 2));
  assert.deepEqual(d.closes, [false]);
  assert.deepEqual(d.reconnects, ["TLS handshake with mta.test:25 failed: wrong version number"]);
  assert.deepEqual(d.answers, [], "the question waits for the new connection");
  d.take(d.machine.connected(3));
  d.say("220 mta ESMTP\r\n", 3);
  d.say("250-mta\r\n250-STARTTLS\r\n250 XCLIENT ADDR\r\n", 4);
  assert.match(d.written.at(-1)!, /^XCLIENT /, "no STARTTLS on this one");
  d.say("220 mta ESMTP\r\n", 5);
  d.say("250 mta\r\n", 6);
  assert.equal(d.written.at(-1), "MAIL FROM:<a@example.net>\r\n");
  assert.equal(d.machine.tls, false);
  assert.equal(d.machine.tlsFallback, "TLS handshake with mta.test:25 failed: wrong version number");
});

test("upstream machine: a client that said HELO is introduced with PROTO=SMTP and greeted with HELO after XCLIENT; the upstream's extensions stay its EHLO's", () => {
  const d = driven();
  d.take(d.machine.connected(0));
  d.say("220 mta ESMTP\r\n");
  d.say("250-mta\r\n250 XCLIENT ADDR PORT NAME HELO PROTO\r\n");
  d.say("220 mta ESMTP\r\n");
  d.say("250-mta\r\n250 SMTPUTF8\r\n");
  assert.equal(d.machine.extensions?.smtputf8, true);
  d.take(d.machine.ask("MAIL FROM:<a@example.net>", 2));
  d.say("250 2.1.0 Ok\r\n");
  finishMessage(d);
  d.take(d.machine.introduce({ ...NEXT, protocol: "SMTP" }, 10));
  assert.match(d.written.at(-1)!, / PROTO=SMTP\r\n$/);
  d.say("220 mta ESMTP\r\n", 11);
  assert.equal(d.written.at(-1), "HELO next.example\r\n", "an EHLO would make Postfix record ESMTP");
  d.say("250 mta\r\n", 12);
  assert.equal(d.machine.extensions?.smtputf8, true, "a reply to HELO lists no extensions, which does not mean there are none");
  assert.equal(d.machine.reusable, true);
});

const XFORWARD_EHLO = "250-mta\r\n250-PIPELINING\r\n250 XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT\r\n";

test("upstream machine: XFORWARD names the client before every MAIL, in the same write as the MAIL when PIPELINING is offered, without a second greeting", () => {
  const d = driven({ identity: "xforward" });
  d.take(d.machine.ask("MAIL FROM:<a@example.net>", 0));
  d.take(d.machine.connected(0));
  d.say("220 mta ESMTP\r\n");
  d.say(XFORWARD_EHLO);
  assert.equal(
    d.written.at(-1),
    "XFORWARD NAME=[UNAVAILABLE] ADDR=192.0.2.7 PORT=4000\r\nXFORWARD PROTO=ESMTP HELO=client.example SOURCE=REMOTE\r\nMAIL FROM:<a@example.net>\r\n",
    "one write: both XFORWARD lines and the MAIL behind them",
  );
  d.say("250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n");
  assert.deepEqual(d.answers.map((a) => a.ok && a.reply.code), [250], "the MAIL's answer is its own, the XFORWARDs' are ours");
  for (const [line, reply] of [["RCPT TO:<b@example.org>", "250 2.1.5 Ok"], ["DATA", "354 go ahead"]]) {
    d.take(d.machine.ask(line, 2));
    assert.equal(d.written.at(-1), `${line}\r\n`);
    d.say(`${reply}\r\n`);
  }
  d.take(d.machine.endData(3));
  d.say("250 2.0.0 Ok: queued as 1A2B\r\n");
  assert.equal(d.machine.reusable, true);
  d.take(d.machine.introduce(NEXT, 10));
  assert.equal(d.written.at(-1), ".\r\n", "no XCLIENT, greeting, EHLO or RSET for the next client");
  d.take(d.machine.ask("MAIL FROM:<n@example.net>", 10));
  assert.match(
    d.written.at(-1)!,
    /^XFORWARD NAME=\[UNAVAILABLE\] ADDR=203\.0\.113\.9 PORT=5000\r\nXFORWARD PROTO=ESMTP HELO=next\.example SOURCE=REMOTE\r\nMAIL /,
  );
  d.say("250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n550 5.7.1 no\r\n", 11);
  assert.deepEqual(d.answers.map((a) => a.ok && a.reply.code), [250, 250, 354, 250, 550]);
  assert.deepEqual(d.reconnects, []);

  const unpipelined = driven({ identity: "xforward" });
  unpipelined.take(unpipelined.machine.ask("MAIL FROM:<a@example.net>", 0));
  unpipelined.take(unpipelined.machine.connected(0));
  unpipelined.say("220 mta ESMTP\r\n");
  unpipelined.say("250-mta\r\n250 XFORWARD NAME ADDR HELO\r\n");
  assert.equal(
    unpipelined.written.at(-1),
    "XFORWARD NAME=[UNAVAILABLE] ADDR=192.0.2.7\r\nXFORWARD HELO=client.example\r\n",
    "only the attributes offered; no MAIL before their answers without PIPELINING",
  );
  unpipelined.say("250 2.0.0 Ok\r\n");
  assert.doesNotMatch(unpipelined.written.join(""), /MAIL/, "the MAIL waits for every XFORWARD's answer");
  unpipelined.say("250 2.0.0 Ok\r\n");
  assert.equal(unpipelined.written.at(-1), "MAIL FROM:<a@example.net>\r\n");
});

test("upstream machine: XFORWARD not offered, or refused on a new connection, answers the MAIL with why; refused on a handed-over one costs the connection, not the MAIL", () => {
  const absent = driven({ identity: "xforward" });
  absent.take(absent.machine.ask("MAIL FROM:<a@example.net>", 0));
  absent.take(absent.machine.connected(0));
  absent.say("220 mta ESMTP\r\n");
  absent.say("250-mta\r\n250 XCLIENT ADDR\r\n");
  assert.equal(absent.answers[0].ok, false);
  assert.match(!absent.answers[0].ok ? absent.answers[0].reason : "", /does not offer XFORWARD.*smtpd_authorized_xforward_hosts/);

  const refused = driven({ identity: "xforward" });
  refused.take(refused.machine.ask("MAIL FROM:<a@example.net>", 0));
  refused.take(refused.machine.connected(0));
  refused.say("220 mta ESMTP\r\n");
  refused.say(XFORWARD_EHLO);
  refused.say("550 5.7.0 Error: insufficient authorization\r\n");
  assert.equal(refused.answers.length, 1);
  assert.match(!refused.answers[0].ok ? refused.answers[0].reason : "", /refused XFORWARD: 550 5\.7\.0/);
  assert.deepEqual(refused.reconnects, []);

  const d = driven({ identity: "xforward" });
  d.take(d.machine.ask("MAIL FROM:<a@example.net>", 0));
  d.take(d.machine.connected(0));
  d.say("220 mta ESMTP\r\n");
  d.say(XFORWARD_EHLO);
  d.say("250 Ok\r\n250 Ok\r\n250 2.1.0 Ok\r\n");
  finishMessage(d);
  d.take(d.machine.introduce(NEXT, 10));
  d.take(d.machine.ask("MAIL FROM:<n@example.net>", 10));
  d.say("421 4.4.2 mta Error: timeout exceeded\r\n", 11);
  assert.equal(d.answers.length, 4, "the MAIL already written behind the XFORWARD is not answered with the failure");
  assert.deepEqual(d.closes, [false]);
  assert.equal(d.reconnects.length, 1);
  d.take(d.machine.connected(12));
  d.say("220 mta ESMTP\r\n", 13);
  d.say(XFORWARD_EHLO, 13);
  assert.match(
    d.written.at(-1)!,
    /^XFORWARD NAME=\[UNAVAILABLE\] ADDR=203\.0\.113\.9 PORT=5000\r\n.*\r\nMAIL FROM:<n@example\.net>\r\n$/s,
    "asked again on the new connection",
  );
  d.say("250 Ok\r\n250 Ok\r\n250 2.1.0 Ok\r\n", 14);
  assert.deepEqual(d.answers.map((a) => a.ok && a.reply.code), [250, 250, 354, 250, 250]);
});
