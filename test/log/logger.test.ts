import assert from "node:assert/strict";
import { bytesToText } from "../../src/log/escape.ts";
import { createLogger } from "../../src/log/logger.ts";
import { test } from "../harness.ts";

const FIXED = () => new Date("2026-11-23T00:00:00.000Z");

test("client text cannot forge or split a log line, in text and in JSON", () => {
  const evil = bytesToText(new TextEncoder().encode('EHLO x\r\ntime=1 event="PASS NEW" \x00\x1b[31m\xff\\'));
  for (const format of ["text", "json"] as const) {
    const lines: string[] = [];
    createLogger(format, "n1", (l) => lines.push(l), FIXED).log({ event: "PREGREET", client: "192.0.2.1:25", sent: evil, action: "ban" });
    assert.equal(lines.length, 1);
    assert.doesNotMatch(lines[0], /[\r\n\x00-\x1f\x7f-\uffff]/);
    if (format === "text") {
      assert.equal(
        lines[0],
        'time=2026-11-23T00:00:00.000Z node=n1 event=PREGREET client=192.0.2.1:25 sent="EHLO x\\r\\ntime=1 event=\\"PASS NEW\\" \\x00\\x1b[31m\\xc3\\xbf\\\\" action=ban',
      );
    } else {
      const parsed = JSON.parse(lines[0]);
      assert.equal(parsed.event, "PREGREET");
      assert.equal(parsed.level, "info", "every JSON line carries a level");
      assert.equal(parsed.sent, evil, "escaped once, by JSON: a parser gets back the bytes the client sent");
    }
  }
});

test("tags with spaces are quoted so the line stays logfmt", () => {
  const lines: string[] = [];
  createLogger("text", "n1", (l) => lines.push(l), FIXED).log({ event: "PASS NEW", client: "[2001:db8::1]:25", action: "pass" });
  assert.equal(lines[0], 'time=2026-11-23T00:00:00.000Z node=n1 event="PASS NEW" client=[2001:db8::1]:25 action=pass');
});
