import assert from "node:assert/strict";
import { type UpstreamAnswer, UpstreamMachine, type UpstreamOutput, type UpstreamSettings } from "../../src/delivery/upstream-machine.ts";
import { test } from "../harness.ts";

const SETTINGS: UpstreamSettings = { name: "mta.test:25", identity: "xclient", timeoutMs: 1_000, dataEndTimeoutMs: 600_000, hostname: "mx.test" };
const CLIENT = { address: "192.0.2.7", port: 4000, local: { address: "198.51.100.25", port: 25 }, helo: "client.example", name: undefined, protocol: "ESMTP" };
const bytes = (text: string) => new TextEncoder().encode(text);
const decoder = new TextDecoder("latin1");

/** Drives a machine and keeps what it wrote and answered. */
function driven(settings: Partial<UpstreamSettings> = {}) {
  const machine = new UpstreamMachine({ ...SETTINGS, ...settings }, CLIENT, 0);
  const written: string[] = [];
  const answers: UpstreamAnswer[] = [];
  const closes: boolean[] = [];
  const take = (outputs: UpstreamOutput[]) => {
    for (const output of outputs) {
      if (output.type === "write") written.push(decoder.decode(output.bytes));
      else if (output.type === "answer") answers.push(output.answer);
      else closes.push(output.graceful);
    }
  };
  return { machine, written, answers, closes, take, say: (text: string, now = 1) => take(machine.received(bytes(text), now)) };
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
  d.say("220 mta ESMTP\r\n");
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
    { name: "MAIL", to: (d) => (d.take(d.machine.connected(0)), d.say("220 mta\r\n"), d.say("250 XCLIENT ADDR\r\n"), d.say("220 mta\r\n"), d.say("250 mta\r\n")) },
  ];
  const faults: { name: string; hit: (d: ReturnType<typeof driven>) => void; reason: RegExp }[] = [
    { name: "refused or reset", hit: (d) => d.take(d.machine.lost("ECONNRESET")), reason: /ECONNRESET/ },
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
      d.take(d.machine.lost("closed the connection"));
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
