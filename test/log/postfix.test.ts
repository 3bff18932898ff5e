import assert from "node:assert/strict";
import { bytesToText } from "../../src/log/escape.ts";
import { createLogger } from "../../src/log/logger.ts";
import { postscreenSeconds } from "../../src/log/postfix.ts";
import { test } from "../harness.ts";

const AT = new Date("2026-11-23T00:00:06.000Z");

function postfixLines(entries: { event: string; [k: string]: string | number | undefined }[]): string[] {
  const lines: string[] = [];
  const logger = createLogger("postfix", "mx1.example", (l) => lines.push(l), () => AT, 4242);
  for (const entry of entries) logger.log(entry);
  return lines;
}

test("postfix format: a pregreet is postscreen's CONNECT and PREGREET lines, client text escaped and clipped", () => {
  const sent = bytesToText(new TextEncoder().encode(`EHLO bot\r\n${"x".repeat(200)}`));
  const lines = postfixLines([{
    event: "PREGREET",
    client: "198.51.100.3:40105",
    local: "192.0.2.25:25",
    after_ms: 300,
    sent,
    bytes: 210,
    duration_ms: 300,
    action: "ban",
  }]);
  assert.deepEqual(lines, [
    "2026-11-23T00:00:05.700Z mx1.example postfix/postscreen[4242]: CONNECT from [198.51.100.3]:40105 to [192.0.2.25]:25",
    `2026-11-23T00:00:06.000Z mx1.example postfix/postscreen[4242]: PREGREET 210 after 0.3 from [198.51.100.3]:40105: EHLO bot\\r\\n${
      "x".repeat(88)
    }`,
    "2026-11-23T00:00:06.000Z mx1.example postfix/postscreen[4242]: DISCONNECT [198.51.100.3]:40105",
  ]);
});

test("postfix format: passes, bans, allow entries, DNSBL and limits in postscreen's words, IPv6 in brackets", () => {
  const lines = postfixLines([
    {
      event: "PASS NEW",
      client: "[2001:db8::1]:2525",
      local: "[2001:db8::25]:25",
      helo: "a.example",
      commands: 4,
      duration_ms: 6000,
      action: "pass",
    },
    {
      event: "BANNED",
      client: "192.0.2.9:1000",
      local: "192.0.2.25:25",
      ban: "192.0.2.9/32",
      reason: "PREGREET",
      by: "mx2",
      duration_ms: 0,
      action: "reject",
    },
    { event: "ALLOWED", client: "192.0.2.10:1000", local: "192.0.2.25:25", commands: 1, duration_ms: 10, action: "pass" },
    { event: "DNSBL", client: "192.0.2.11:1000", local: "192.0.2.25:25", dnsbl_score: 3, commands: 3, duration_ms: 10, action: "enforce" },
    {
      event: "HELO",
      client: "192.0.2.13:1000",
      local: "192.0.2.25:25",
      helo: "x",
      dnsbl_score: 2,
      commands: 3,
      duration_ms: 10,
      action: "enforce",
    },
    { event: "CONNECTION-LIMIT", client: "192.0.2.12:1000", local: "192.0.2.25:25", limit: "total", duration_ms: 0, action: "close" },
  ]).map((line) => line.replace(/^\S+ mx1\.example postfix\/postscreen\[4242\]: /, ""));
  assert.deepEqual(lines, [
    "CONNECT from [2001:db8::1]:2525 to [2001:db8::25]:25",
    "PASS NEW [2001:db8::1]:2525",
    "DISCONNECT [2001:db8::1]:2525",
    "CONNECT from [192.0.2.9]:1000 to [192.0.2.25]:25",
    "DENYLISTED [192.0.2.9]:1000",
    "BANNED [192.0.2.9]:1000 ban=192.0.2.9/32 reason=PREGREET by=mx2",
    "NOQUEUE: reject: CONNECT from [192.0.2.9]:1000: 554 5.7.1 Service unavailable; client [192.0.2.9] blocked using mxscreen ban list; proto=SMTP",
    "DISCONNECT [192.0.2.9]:1000",
    "CONNECT from [192.0.2.10]:1000 to [192.0.2.25]:25",
    "ALLOWLISTED [192.0.2.10]:1000",
    "DISCONNECT [192.0.2.10]:1000",
    "CONNECT from [192.0.2.11]:1000 to [192.0.2.25]:25",
    "DNSBL rank 3 for [192.0.2.11]:1000",
    "DISCONNECT [192.0.2.11]:1000",
    "CONNECT from [192.0.2.13]:1000 to [192.0.2.25]:25",
    "DNSBL rank 2 for [192.0.2.13]:1000",
    "HELO [192.0.2.13]:1000 helo=x dnsbl_score=2 commands=3 duration_ms=10",
    "DISCONNECT [192.0.2.13]:1000",
    "CONNECT from [192.0.2.12]:1000 to [192.0.2.25]:25",
    "NOQUEUE: reject: CONNECT from [192.0.2.12]:1000: all server ports busy",
    "DISCONNECT [192.0.2.12]:1000",
  ]);
});

/**
 * Each verdict line against the format string Postfix itself logs it with (postfix 3.12,
 * github.com/vdukhovni/postfix, src/postscreen and src/smtpd; cited, not copied):
 * - `CONNECT from [%s]:%s to [%s]:%s`, `NOQUEUE: reject: CONNECT from [%s]:%s: too many connections`,
 *   `… all server ports busy`, `%sLISTED [%s]:%s` (DENY/ALLOW with respectful_logging, Postfix 3.6's
 *   default; BLACK/WHITE before): postscreen.c, psc_endpt_lookup_done().
 * - `PREGREET %d after %s from [%s]:%s: %.100s` and `DNSBL rank %d for [%s]:%s`: postscreen_early.c,
 *   psc_early_event().
 * - `PASS %s [%s]:%s` (NEW/OLD) and `DISCONNECT [%s]:%s`: postscreen_misc.c, psc_conclude();
 *   `HANGUP after %s from [%s]:%s in %s` with the test phase: psc_hangup_event(); elapsed times by
 *   psc_format_delta_time() (format_tv, 2 significant digits, at most 2 decimals).
 * - `NON-SMTP COMMAND from [%s]:%s after %s: %.100s %s` (previous command, verb, whole line),
 *   `BARE NEWLINE from [%s]:%s after %s` (the line), `COMMAND PIPELINING from [%s]:%s after %.100s: %s`,
 *   `COMMAND COUNT LIMIT from [%s]:%s after %s` (previous command): postscreen_smtpd.c,
 *   psc_smtpd_read_event(); `COMMAND TIME LIMIT from [%s]:%s after %s` (last command):
 *   psc_smtpd_time_event().
 * - `NOQUEUE: reject: RCPT from %s: %s; from=<%s> to=<%s> proto=%s helo=<%s>` (name[addr], no commas):
 *   smtpd_check.c, log_whatsup(); postscreen's own RCPT line has commas, but mxscreen's sessions are
 *   smtpd's, so the smtpd form is the one written.
 */
test("postfix format: every verdict line in the exact format Postfix's source logs it with", () => {
  const at = { client: "198.51.100.7:4000", local: "192.0.2.25:25", duration_ms: 1250 };
  const line = (entry: { event: string; [k: string]: string | number | undefined }) =>
    postfixLines([{ ...at, ...entry }]).map((l) => l.replace(/^\S+ mx1\.example postfix\/(postscreen|smtpd)\[4242\]: /, ""));
  const c = "[198.51.100.7]:4000";
  const framed = (...middle: string[]) => [`CONNECT from ${c} to [192.0.2.25]:25`, ...middle, `DISCONNECT ${c}`];
  assert.deepEqual(
    line({ event: "HANGUP", after_ms: 2500, action: "close" }),
    framed(`HANGUP after 2.5 from ${c} in tests before SMTP handshake`),
  );
  assert.deepEqual(line({ event: "PASS OLD", commands: 3, after: "QUIT", action: "pass" }), framed(`PASS OLD ${c}`));
  assert.deepEqual(
    line({ event: "CONNECTION-LIMIT", limit: "client", key: "198.51.100.7", connections: 11, action: "enforce" }),
    framed(`NOQUEUE: reject: CONNECT from ${c}: too many connections`),
  );
  assert.deepEqual(
    line({ event: "NON-SMTP", sent: "GET / HTTP/1.1", commands: 0, after: "CONNECT", action: "enforce" }),
    framed(`NON-SMTP COMMAND from ${c} after CONNECT: GET GET / HTTP/1.1`),
  );
  assert.deepEqual(
    line({ event: "NON-SMTP", sent: "Host: x\u0001", commands: 1, after: "EHLO", action: "enforce" }),
    framed(`NON-SMTP COMMAND from ${c} after EHLO: Host: Host: x\\x01`),
  );
  assert.deepEqual(
    line({ event: "BARE-LF", sent: "EHLO bot.example", commands: 0, after: "CONNECT", action: "enforce" }),
    framed(`BARE NEWLINE from ${c} after EHLO bot.example`),
  );
  assert.deepEqual(
    line({
      event: "PIPELINING",
      command: "EHLO",
      ahead: "MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n",
      commands: 1,
      after: "CONNECT",
      action: "enforce",
    }),
    framed(`COMMAND PIPELINING from ${c} after EHLO: MAIL FROM:<a@b.example>\\r\\nRCPT TO:<c@d.example>\\r\\n`),
  );
  assert.deepEqual(
    line({ event: "TIMEOUT", commands: 2, after: "MAIL", action: "close" }),
    framed(`COMMAND TIME LIMIT from ${c} after MAIL`),
  );
  assert.deepEqual(
    line({ event: "COMMAND-LIMIT", limit: "commands", commands: 1001, after: "NOOP", action: "enforce" }),
    framed(`COMMAND COUNT LIMIT from ${c} after NOOP`),
  );
  assert.deepEqual(
    line({
      event: "REJECT",
      stage: "RCPT",
      from: "a@sender.example",
      to: "b@elsewhere.example",
      helo: "client.example",
      reply: "554 5.7.1 <b@elsewhere.example>: Relay access denied",
    }),
    ["NOQUEUE: reject: RCPT from unknown[198.51.100.7]: 554 5.7.1 <b@elsewhere.example>: Relay access denied; from=<a@sender.example> to=<b@elsewhere.example> proto=ESMTP helo=<client.example>"],
  );
});

test("postfix format: elapsed times as Postfix's format_tv writes them", () => {
  const cases: [number, string][] = [
    [0, "0"],
    [4, "0"],
    [5, "0.01"],
    [123, "0.12"],
    [300, "0.3"],
    [995, "1"],
    [1000, "1"],
    [1250, "1.3"],
    [9960, "10"],
    [12_600, "13"],
    [250_000, "250"],
  ];
  assert.deepEqual(cases.map(([ms]) => [ms, postscreenSeconds(ms)]), cases);
});

test("postfix format: a delivery is traced as pflogsumm counts it: client, from and size, each recipient with the reply", () => {
  const lines = postfixLines([
    {
      event: "DELIVERED",
      client: "192.0.2.11:54689",
      queue_id: "MWSKDRC60P5027",
      from: "a@sender.example",
      to: "b@ours.example,c@ours.example",
      size: 2048,
      reply: "250 2.0.0 Ok: queued as 4XyZ",
      relay: "127.0.0.1:10025",
      action: "relay",
    },
  ]).map((line) => line.replace(/^\S+ mx1\.example /, ""));
  assert.deepEqual(lines, [
    "postfix/postscreen[4242]: MWSKDRC60P5027: client=unknown[192.0.2.11]",
    "postfix/qmgr[4242]: MWSKDRC60P5027: from=<a@sender.example>, size=2048, nrcpt=2 (queue active)",
    "postfix/smtp[4242]: MWSKDRC60P5027: to=<b@ours.example>, relay=127.0.0.1:10025, delay=0, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4XyZ)",
    "postfix/smtp[4242]: MWSKDRC60P5027: to=<c@ours.example>, relay=127.0.0.1:10025, delay=0, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4XyZ)",
  ]);
});

test("postfix format: operational lines are postscreen's, warnings as warning:", () => {
  const lines: string[] = [];
  createLogger("postfix", "mx1", (l) => lines.push(l), () => AT, 7).note("warn", "DNSBL zone is unhealthy", { zone: "bl.example" });
  assert.deepEqual(lines, ["2026-11-23T00:00:06.000Z mx1 postfix/postscreen[7]: warning: DNSBL zone is unhealthy zone=bl.example"]);
});
