import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { dnsblScore, zoneVerdict } from "../../src/dnsbl/dnsbl.ts";
import { parseDnsblReplyMap } from "../../src/dnsbl/dnsbl-reply-map.ts";
import type { DnsblSite } from "../../src/dnsbl/dnsbl-sites.ts";
import type { DnsAnswer, DnsblAnswer } from "../../src/dns/types.ts";
import { Session } from "../../src/smtp/session.ts";
import { test } from "../harness.ts";
import { tempDir } from "../helpers/server.ts";
import { CLIENT, lineByLine, play, STRICT, transcript } from "../smtp/transcript.ts";

const ok = (...records: string[]): DnsAnswer => ({ status: "ok", records, ttl: 60 });
const START = "HELO client.example\r\n";

test("sender-domain: no MX/A/AAAA gets 550 5.1.8, a DNS failure 450 4.1.8, a null MX 550; the session goes on", () => {
  const answers: Record<string, DnsAnswer> = {
    "nx.example": { status: "nxdomain" },
    "broken.example": { status: "error", reason: "ESERVFAIL" },
    "nullmx.example": ok("."),
    "good.example": ok("mail.good.example"),
  };
  const t = transcript(`
    C: HELO client.example
    S: 250 mx.test.example Hello client.example [192.0.2.1]
    C: MAIL FROM:<a@nx.example>
    S: 550 5.1.8 <a@nx.example>: Sender address rejected: Domain not found
    C: MAIL FROM:<a@broken.example>
    S: 450 4.1.8 <a@broken.example>: Sender address rejected: Domain not found (DNS: ESERVFAIL)
    C: MAIL FROM:<a@nullmx.example>
    S: 550 5.1.8 <a@nullmx.example>: Sender address rejected: Domain accepts no mail (null MX)
    C: MAIL FROM:<a@good.example>
    S: 250 2.1.0 Ok
  `);
  const looked: string[] = [];
  const { replies, session } = play(lineByLine(t.client), STRICT, undefined, undefined, (domain) => (looked.push(domain), answers[domain]));
  assert.equal(replies, t.server);
  assert.deepEqual(looked, ["nx.example", "broken.example", "nullmx.example", "good.example"]);
  assert.deepEqual(session.facts.findings.map((f) => [f.tag, f.evidence.dns]), [["SENDER-DOMAIN", "nxdomain"], [
    "SENDER-DOMAIN",
    "ESERVFAIL",
  ], ["SENDER-DOMAIN", "null-mx"]]);
  assert.equal(session.facts.transactions, 1);
});

test("sender-domain: the null sender and address literals are not looked up", () => {
  const looked: string[] = [];
  const { replies } = play(
    lineByLine(`${START}MAIL FROM:<>\r\nRSET\r\nMAIL FROM:<a@[192.0.2.1]>\r\n`),
    STRICT,
    undefined,
    undefined,
    (d) => (looked.push(d), ok("x")),
  );
  assert.match(replies, /250 2\.1\.0 Ok\r\n250 2\.0\.0 Ok\r\n250 2\.1\.0 Ok\r\n$/);
  assert.deepEqual(looked, []);
});

test("sender-domain: commands sent while the lookup runs wait for it, and are answered in order", () => {
  const session = new Session({ ...STRICT, pipelining: true }, CLIENT, 0);
  const encoder = new TextEncoder();
  session.receive(encoder.encode("EHLO client.example\r\n"), 0);
  const waiting = session.receive(encoder.encode("MAIL FROM:<a@good.example>\r\nRCPT TO:<b@example.org>\r\n"), 1);
  assert.deepEqual(waiting, [{ type: "lookup-mail-domain", domain: "good.example" }]);
  assert.deepEqual(session.tick(STRICT.commandTimeoutMs * 2), [], "no timeout while DNS is asked");
  const after = session.resolved(ok("mail.good.example"), 2).map((o) => (o as { text: string }).text);
  assert.deepEqual(after, ["250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n"]);
});

const ZEN: DnsblSite = { zone: "zen.example", filter: [[[127, 127]], [[0, 0]], [[0, 0]], [[2, 11]]], weight: 3 };
const ANY: DnsblSite = { zone: "any.example", filter: undefined, weight: 1 };
const WL: DnsblSite = { zone: "wl.example", filter: [[[127, 127]], [[0, 0]], [[0, 255]], [[1, 3]]], weight: -4 };

test("dnsbl: a listing counts its weight; error codes and answers outside the range are unhealthy, never listings", () => {
  assert.deepEqual(zoneVerdict(ok("127.0.0.2"), ZEN), { kind: "listed" });
  assert.deepEqual(zoneVerdict({ status: "nxdomain" }, ZEN), { kind: "clean" });
  assert.equal(zoneVerdict(ok("127.255.255.254"), ANY).kind, "unhealthy");
  assert.equal(zoneVerdict(ok("127.0.0.1"), ZEN).kind, "unhealthy");
  assert.equal(zoneVerdict(ok("10.0.0.2"), ANY).kind, "unhealthy");
  assert.equal(zoneVerdict({ status: "error", reason: "ETIMEOUT" }, ANY).kind, "unhealthy");
  assert.equal(zoneVerdict(ok("127.0.9.255"), WL).kind, "unhealthy", "DNSWL over quota");
  const answers: DnsblAnswer[] = [
    { zone: "zen.example", answer: ok("127.0.0.4") },
    { zone: "any.example", answer: ok("127.255.255.255") },
  ];
  assert.deepEqual(dnsblScore(answers, [ZEN, ANY]), { score: 3, listed: ["zen.example*3"], unhealthy: ["any.example"] });
});

const DNSBL_CONFIG = { ...STRICT, checks: { ...STRICT.checks, dnsbl: [ZEN, ANY, WL], dnsblThreshold: 3, dnswlThreshold: -1 } };

test("dnsbl: at the threshold every RCPT but postmaster is refused with 550 5.7.1 naming the list", () => {
  const listed = play(
    lineByLine(`${START}MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<postmaster@example.org>\r\n`),
    DNSBL_CONFIG,
    undefined,
    undefined,
    undefined,
    {
      dnsbl: [{ zone: "zen.example", answer: ok("127.0.0.2") }],
    },
  );
  assert.match(
    listed.replies,
    /550 5\.7\.1 <b@example\.org>: Service unavailable; client \[192\.0\.2\.1\] blocked using zen\.example\r\n250 2\.1\.5 Ok\r\n$/,
  );
  assert.deepEqual(listed.session.facts.findings.map((f) => [f.tag, f.evidence.score, f.evidence.listed]), [["DNSBL", 3, "zen.example*3"]]);
  assert.equal(listed.session.facts.dnsblScore, 3);
});

test("dnsbl reply map: a zone with a key in its name is shown by its mapped name; the evidence keeps the zone", () => {
  const DQS: DnsblSite = { zone: "k3y.zen.dq.example", filter: undefined, weight: 3 };
  const config = {
    ...DNSBL_CONFIG,
    checks: { ...DNSBL_CONFIG.checks, dnsbl: [DQS, ZEN], dnsblReplyMap: { "k3y.zen.dq.example": "zen.example" } },
  };
  const listed = play(
    lineByLine(`${START}MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n`),
    config,
    undefined,
    undefined,
    undefined,
    {
      dnsbl: [{ zone: "k3y.zen.dq.example", answer: ok("127.0.0.2") }, { zone: "zen.example", answer: ok("127.0.0.2") }],
    },
  );
  // Both zones are shown as zen.example: named once.
  assert.match(
    listed.replies,
    /550 5\.7\.1 <b@example\.org>: Service unavailable; client \[192\.0\.2\.1\] blocked using zen\.example\r\n$/,
  );
  assert.doesNotMatch(listed.replies, /k3y/);
  assert.equal(listed.session.facts.findings[0].evidence.listed, "k3y.zen.dq.example*3,zen.example*3");
});

test("dnsbl reply map file: zone and name per line, comments and blank lines skipped; a bad line or a missing file names itself", () => {
  const dir = tempDir();
  const file = join(dir, "dnsbl_reply");
  writeFileSync(
    file,
    "# Spamhaus DQS\nK3Y.zen.dq.example.   zen.spamhaus.org (see https://check.spamhaus.org)\n\n  other.example other  # the list's public name\n",
  );
  assert.deepEqual(parseDnsblReplyMap("MXSCREEN_DNSBL_REPLY_MAP", file), {
    "k3y.zen.dq.example": "zen.spamhaus.org (see https://check.spamhaus.org)",
    "other.example": "other",
  });
  assert.deepEqual(parseDnsblReplyMap("MXSCREEN_DNSBL_REPLY_MAP", ""), {});
  writeFileSync(file, "zen.example\n");
  assert.throws(
    () => parseDnsblReplyMap("MXSCREEN_DNSBL_REPLY_MAP", file),
    /MXSCREEN_DNSBL_REPLY_MAP=".*" is not valid: .*line 1 is not one: "zen\.example"/,
  );
  assert.throws(
    () => parseDnsblReplyMap("MXSCREEN_DNSBL_REPLY_MAP", join(dir, "missing")),
    /MXSCREEN_DNSBL_REPLY_MAP=".*missing" is not valid: expected a readable file .*ENOENT/,
  );
});

test("dnsbl: below the threshold, or with only unhealthy zones, nothing is refused", () => {
  const errors = play(
    lineByLine(`${START}MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n`),
    DNSBL_CONFIG,
    undefined,
    undefined,
    undefined,
    {
      dnsbl: [{ zone: "zen.example", answer: ok("127.255.255.254") }, { zone: "any.example", answer: ok("127.0.0.2") }],
    },
  );
  assert.match(errors.replies, /250 2\.1\.5 Ok\r\n$/);
  assert.equal(errors.session.facts.findings.length, 0);
});

test("dnswl: a score at or below MXSCREEN_DNSWL_THRESHOLD skips every further check", () => {
  const { replies, session } = play(
    lineByLine("HELO localhost\r\nMAIL FROM:<a@nx.example>\r\nRCPT TO:<b@example.org>\r\n"),
    DNSBL_CONFIG,
    undefined,
    undefined,
    () => ({ status: "nxdomain" }),
    {
      dnsbl: [{ zone: "wl.example", answer: ok("127.0.10.2") }, { zone: "any.example", answer: ok("127.0.0.2") }],
    },
  );
  assert.match(replies, /250 2\.1\.0 Ok\r\n250 2\.1\.5 Ok\r\n$/);
  assert.equal(session.facts.dnsblScore, -3);
  assert.equal(session.facts.findings.length, 0);
});

test("ptr: a client without forward-confirmed reverse DNS is recorded, never refused; a confirmed one is not recorded", () => {
  const none = play(lineByLine(`${START}MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n`), STRICT);
  none.session.start();
  none.session.learnReverseDns({ status: "fail", names: ["dyn-192-0-2-1.isp.example"] });
  none.session.clientClosed();
  assert.match(none.replies, /250 2\.1\.5 Ok\r\n$/);
  assert.deepEqual(none.session.facts.findings.map((f) => [f.tag, f.action, f.evidence.fcrdns, f.evidence.ptr]), [[
    "PTR",
    "ignore",
    "fail",
    "dyn-192-0-2-1.isp.example",
  ]]);
  const confirmed = new Session(STRICT, CLIENT, 0);
  confirmed.start();
  confirmed.learnReverseDns({ status: "pass", name: "client.example" });
  confirmed.clientClosed();
  assert.deepEqual(confirmed.facts.findings, []);
});

test("sender-domain: a shutdown while DNS is asked waits for the answer, then says 421", () => {
  const session = new Session(STRICT, CLIENT, 0);
  const encoder = new TextEncoder();
  session.receive(encoder.encode("HELO client.example\r\n"), 0);
  session.receive(encoder.encode("MAIL FROM:<a@good.example>\r\n"), 1);
  assert.deepEqual(session.shutdown(), [], "nothing said while MAIL waits");
  const after = session.resolved(ok("mail.good.example"), 2);
  assert.deepEqual(after.filter((o) => o.type === "reply").map((o) => (o as { text: string }).text.slice(0, 9)), [
    "250 2.1.0",
    "421 4.3.2",
  ]);
  assert.ok(session.closed);
});
