import assert from "node:assert/strict";
import { heloClaim } from "../../src/checks/helo-claims.ts";
import { heloProblem } from "../../src/checks/helo-syntax.ts";
import type { ClientInfo, SessionConfig } from "../../src/smtp/types.ts";
import { test } from "../harness.ts";
import { CLIENT, lineByLine, play, STRICT, transcript } from "../smtp/transcript.ts";

test("helo-syntax: RFC 5321 4.1.3 and 2.3.5, case by case", () => {
  const cases: [string, string | undefined][] = [
    ["client.example.net", undefined],
    ["client.example.net.", undefined],
    ["[192.0.2.1]", undefined],
    ["[IPv6:2001:db8::1]", "address literal is not the client's address"],
    ["192.0.2.1", "bare IP address without brackets"],
    ["2001:db8::1", "bare IP address without brackets"],
    ["[192.0.2.99]", "address literal is not the client's address"],
    ["[192.0.2.300]", "invalid address literal"],
    ["localhost", "not a fully qualified domain name"],
    ["QAPVBYXA", "not a fully qualified domain name"],
    ["host.123", "not a fully qualified domain name"],
    ["bad_name.example", "invalid characters in host name"],
    ["-dash.example", "invalid characters in host name"],
    ["MX.TEST.EXAMPLE", undefined],
  ];
  for (const [helo, expected] of cases) assert.equal(heloProblem(helo, "192.0.2.1"), expected, helo);
  assert.equal(heloProblem("[IPv6:2001:DB8:0::1]", "2001:db8::1"), undefined, "IPv6 literal compared as an address");
});

test("helo-claims: our names, our mail domains and our addresses are forgeries; the client's own address is not", () => {
  const ours = { names: ["mx.test.example", "mx2.test.example"], domains: ["example.org"], addresses: ["192.0.2.25", "2001:db8::25"] };
  const cases: [string, string | undefined][] = [
    ["MX.TEST.EXAMPLE", "our own host name"],
    ["mx2.test.example.", "our own host name"],
    ["Example.Org", "one of our mail domains"],
    ["mail.example.org", undefined],
    ["[192.0.2.25]", "our own address"],
    ["192.0.2.25", "our own address"],
    ["[IPv6:2001:DB8:0::25]", "our own address"],
    ["2001:db8::25", "our own address"],
    ["[192.0.2.26]", undefined],
    ["client.example.net", undefined],
  ];
  for (const [helo, expected] of cases) assert.equal(heloClaim(helo, "198.51.100.7", ours), expected, helo);
  assert.equal(
    heloClaim("[192.0.2.25]", "192.0.2.25", ours),
    undefined,
    "a host at our own address (loopback, our network) says who it is",
  );
});

const CLAIMS: SessionConfig = {
  ...STRICT,
  checks: { ...STRICT.checks, ownNames: ["mx2.test.example"], acceptDomains: ["example.org"], listenAddresses: ["192.0.2.25"] },
};
const AT_OUR_ADDRESS: ClientInfo = { ...CLIENT, local: { address: "198.51.100.25", port: 25 } };

for (
  const [helo, claim] of [["example.org", "one of our mail domains"], ["mx2.test.example", "our own host name"], [
    "[192.0.2.25]",
    "our own address",
  ], ["[198.51.100.25]", "our own address"]]
) {
  test(`helo-claims transcript: HELO ${helo} is refused at RCPT as ${claim}; postmaster@ still gets through`, () => {
    const t = transcript(`
      C: HELO ${helo}
      S: 250 mx.test.example Hello ${helo} [192.0.2.1]
      C: MAIL FROM:<a@example.net>
      S: 250 2.1.0 Ok
      C: RCPT TO:<someone@example.org>
      S: 550 5.7.1 <someone@example.org>: Helo command rejected: you are not ${claim === "our own address" ? "at our address" : "us"}
      C: RCPT TO:<postmaster@example.org>
      S: 250 2.1.5 Ok
    `);
    const { replies, session } = play(lineByLine(t.client), CLAIMS, undefined, AT_OUR_ADDRESS);
    assert.equal(replies, t.server);
    assert.deepEqual(session.facts.findings[0], {
      check: "helo-claims",
      tag: "HELO-CLAIMS",
      action: "enforce",
      consequence: "delay",
      evidence: { helo, claim },
    });
  });
}

test("helo-claims: an address of ours is also a syntax error (not the client's, or bare); the claim's reply comes first, both are recorded", () => {
  const { replies, session } = play(lineByLine("HELO 192.0.2.25\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n"), CLAIMS);
  assert.match(replies, /550 5\.7\.1 <b@example\.org>: Helo command rejected: you are not at our address\r\n$/);
  assert.deepEqual(session.facts.findings.map((f) => [f.check, f.evidence.claim ?? f.evidence.problem]), [[
    "helo-claims",
    "our own address",
  ], ["helo-syntax", "bare IP address without brackets"]]);
});

test("helo-claims with action ignore: recorded, the recipient accepted", () => {
  const { replies, session } = play(lineByLine("EHLO example.org\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n"), {
    ...CLAIMS,
    actions: { "helo-claims": "ignore" },
  });
  assert.match(replies, /250 2\.1\.5 Ok\r\n$/);
  assert.deepEqual(session.facts.findings.map((f) => [f.check, f.action]), [["helo-claims", "ignore"]]);
});

test("delayed rejection: a bad HELO is answered at RCPT; postmaster@ and abuse@ of our domains still get through", () => {
  const t = transcript(`
    C: HELO 192.0.2.1
    S: 250 mx.test.example Hello 192.0.2.1 [192.0.2.1]
    C: MAIL FROM:<a@example.net>
    S: 250 2.1.0 Ok
    C: RCPT TO:<someone@example.org>
    S: 550 5.7.1 <someone@example.org>: Helo command rejected: bare IP address without brackets
    C: RCPT TO:<postmaster@example.org>
    S: 250 2.1.5 Ok
    C: RCPT TO:<Abuse@example.org>
    S: 250 2.1.5 Ok
    C: RCPT TO:<abuse@elsewhere.example>
    S: 554 5.7.1 <abuse@elsewhere.example>: Relay access denied
    C: DATA
    S: 354 End data with <CR><LF>.<CR><LF>
  `);
  const { replies, session } = play(lineByLine(t.client), STRICT);
  assert.equal(replies, t.server);
  assert.deepEqual(session.facts.findings.map((f) => [f.tag, f.evidence.helo, f.action]), [["HELO", "192.0.2.1", "enforce"]]);
});

test("helo-syntax with action ignore: recorded, recipients accepted", () => {
  const { replies, session } = play(lineByLine("HELO localhost\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n"), {
    ...STRICT,
    actions: { "helo-syntax": "ignore" },
  });
  assert.match(replies, /250 2\.1\.5 Ok\r\n$/);
  assert.equal(session.facts.findings[0].tag, "HELO");
});

test("helo-schizo: a second HELO with another name gets 550 5.7.1 and close; the same name again is fine", () => {
  const t = transcript(`
    C: EHLO client.example
    S: 250-mx.test.example Hello client.example [192.0.2.1]
    S: 250-SIZE 1000
    S: 250-8BITMIME
    S: 250-SMTPUTF8
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: HELO Client.Example
    S: 250 mx.test.example Hello Client.Example [192.0.2.1]
    C: HELO other.example
    S: 550 5.7.1 mx.test.example Error: client [192.0.2.1] changed its HELO name; closing
  `);
  const { replies, session } = play(lineByLine(`${t.client}MAIL FROM:<a@example.net>\r\n`), STRICT);
  assert.equal(replies, t.server);
  assert.deepEqual(session.facts.findings.map((f) => [f.tag, f.evidence.helo, f.evidence.earlier]), [[
    "HELO-SCHIZO",
    "other.example",
    "client.example",
  ]]);
});

const REFUSING = { ...STRICT, checks: { ...STRICT.checks, ehloRefusal: true } };

test("ehlo-refused: EHLO gets 502 5.5.1; a bot that quits instead of HELO is recorded with action ban", () => {
  const t = transcript(`
    C: EHLO bot.example
    S: 502 5.5.1 Error: EHLO not supported, send HELO
    C: QUIT
    S: 221 2.0.0 Bye
  `);
  const { replies, session } = play(lineByLine(t.client), REFUSING);
  assert.equal(replies, t.server);
  assert.deepEqual(session.facts.findings.map((f) => [f.tag, f.action]), [["EHLO-REFUSED", "ban"]]);
});

test("ehlo-refused: a bot that disconnects after the 502 is caught as well", () => {
  const { session } = play(lineByLine("EHLO bot.example\r\n"), REFUSING);
  session.clientClosed();
  assert.deepEqual(session.facts.findings.map((f) => f.tag), ["EHLO-REFUSED"]);
});

test("ehlo-refused: a client that falls back to HELO with the same name goes on and is not caught", () => {
  const { replies, session } = play(
    lineByLine("EHLO client.example\r\nHELO client.example\r\nMAIL FROM:<a@example.net>\r\nQUIT\r\n"),
    REFUSING,
  );
  assert.match(replies, /^502 [^\n]+\n250 mx\.test\.example Hello client\.example [^\n]+\n250 2\.1\.0 Ok\r\n221 /);
  assert.equal(session.facts.findings.length, 0);
});

test("ehlo-refused: a passed client gets EHLO, and the refusal is off by default", () => {
  const passed = play(lineByLine("EHLO client.example\r\n"), REFUSING, undefined, { ...CLIENT, passed: true });
  assert.match(passed.replies, /^250-mx\.test\.example/);
  assert.match(play(lineByLine("EHLO client.example\r\n"), STRICT).replies, /^250-/);
});

test("helo forward DNS: the session asks for a HELO name's addresses without waiting, and records the outcome as a fact", () => {
  const { outputs, session, replies } = play(lineByLine("HELO client.example\r\nHELO client.example\r\n"), STRICT);
  assert.deepEqual(
    outputs.filter((o) => o.type === "lookup-helo-name"),
    [{ type: "lookup-helo-name", name: "client.example" }],
    "asked once per name",
  );
  assert.match(replies, /^250 [^\n]+\n250 /, "both HELOs answered at once");
  session.learnHeloDns("other.example", "match");
  assert.equal(session.facts.heloDns, undefined, "an answer for a name no longer in use is dropped");
  session.learnHeloDns("client.example", "mismatch");
  assert.equal(session.facts.heloDns, "mismatch");
  assert.equal(session.facts.findings.length, 0, "a mismatch never refuses");
  const literal = play(lineByLine("HELO [192.0.2.1]\r\n"), STRICT);
  assert.ok(!literal.outputs.some((o) => o.type === "lookup-helo-name"), "an address literal is not looked up");
});
