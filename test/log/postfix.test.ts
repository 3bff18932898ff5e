import assert from "node:assert/strict";
import { bytesToText } from "../../src/log/escape.ts";
import { createLogger } from "../../src/log/logger.ts";
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
  const lines = postfixLines([{ event: "PREGREET", client: "198.51.100.3:40105", local: "192.0.2.25:25", after_ms: 300, sent, bytes: 210, duration_ms: 300, action: "ban" }]);
  assert.deepEqual(lines, [
    "2026-11-23T00:00:05.700Z mx1.example postfix/postscreen[4242]: CONNECT from [198.51.100.3]:40105 to [192.0.2.25]:25",
    `2026-11-23T00:00:06.000Z mx1.example postfix/postscreen[4242]: PREGREET 210 after 0.3 from [198.51.100.3]:40105: EHLO bot\\r\\n${"x".repeat(88)}`,
  ]);
});

test("postfix format: passes, bans, allow entries, DNSBL and limits in postscreen's words, IPv6 in brackets", () => {
  const lines = postfixLines([
    { event: "PASS NEW", client: "[2001:db8::1]:2525", local: "[2001:db8::25]:25", helo: "a.example", commands: 4, duration_ms: 6000, action: "pass" },
    { event: "BANNED", client: "192.0.2.9:1000", local: "192.0.2.25:25", ban: "192.0.2.9/32", reason: "PREGREET", by: "mx2", duration_ms: 0, action: "reject" },
    { event: "ALLOWED", client: "192.0.2.10:1000", local: "192.0.2.25:25", commands: 1, duration_ms: 10, action: "pass" },
    { event: "DNSBL", client: "192.0.2.11:1000", local: "192.0.2.25:25", dnsbl_score: 3, commands: 3, duration_ms: 10, action: "enforce" },
    { event: "HELO", client: "192.0.2.13:1000", local: "192.0.2.25:25", helo: "x", dnsbl_score: 2, commands: 3, duration_ms: 10, action: "enforce" },
    { event: "LIMIT", client: "192.0.2.12:1000", limit: "total", action: "enforce" },
  ]).map((line) => line.replace(/^\S+ mx1\.example postfix\/postscreen\[4242\]: /, ""));
  assert.deepEqual(lines, [
    "CONNECT from [2001:db8::1]:2525 to [2001:db8::25]:25",
    "PASS NEW [2001:db8::1]:2525",
    "DISCONNECT [2001:db8::1]:2525",
    "CONNECT from [192.0.2.9]:1000 to [192.0.2.25]:25",
    "DENYLISTED [192.0.2.9]:1000 ban=192.0.2.9/32 reason=PREGREET by=mx2",
    "NOQUEUE: reject: CONNECT from [192.0.2.9]:1000: 554 5.7.1 Service unavailable; client [192.0.2.9] blocked using mxscreen ban list; proto=SMTP",
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
    "LIMIT [192.0.2.12]:1000 limit=total",
  ]);
});

test("postfix format: a delivery is traced as pflogsumm counts it: client, from and size, each recipient with the reply", () => {
  const lines = postfixLines([
    { event: "DELIVERED", client: "192.0.2.11:54689", queue_id: "MWSKDRC60P5027", from: "a@sender.example", to: "b@ours.example,c@ours.example", size: 2048, reply: "250 2.0.0 Ok: queued as 4XyZ", relay: "127.0.0.1:10025", action: "relay" },
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
