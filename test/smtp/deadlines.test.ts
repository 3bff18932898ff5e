import assert from "node:assert/strict";
import { Session } from "../../src/smtp/session.ts";
import type { Output } from "../../src/smtp/types.ts";
import { test } from "../harness.ts";
import { CLIENT, CONFIG } from "./transcript.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const replies = (out: Output[]) => out.flatMap((o) => (o.type === "reply" ? [o.text] : []));
const TIMEOUT = CONFIG.commandTimeoutMs;

/** Feeds `text` one byte every `gapMs` from `from` on, ticking as a runner would; returns when the session closed. */
function drip(session: Session, text: string, from: number, gapMs: number): { closedAt: number | undefined; outputs: Output[] } {
  const outputs: Output[] = [];
  let now = from;
  for (const byte of enc(text)) {
    outputs.push(...session.tick(now));
    if (session.closed) return { closedAt: now, outputs };
    outputs.push(...session.receive(Uint8Array.of(byte), now));
    now += gapMs;
  }
  return { closedAt: undefined, outputs };
}

test("a command dripped a byte at a time must still be complete within the command timeout (per-line deadline)", () => {
  const session = new Session(CONFIG, CLIENT, 0);
  assert.equal(session.deadline, TIMEOUT);
  const { closedAt, outputs } = drip(session, `NOOP ${"x".repeat(200)}\r\n`, 1000, 3000);
  assert.ok(closedAt !== undefined && closedAt >= TIMEOUT && closedAt < TIMEOUT + 3000, `closed at ${closedAt}`);
  assert.deepEqual(replies(outputs), ["421 4.4.2 mx.test.example Error: timeout exceeded\r\n"]);
  assert.equal(session.facts.end, "timeout");
});

test("each complete line restarts the deadline, whether lines come one per read, pipelined or byte by byte", () => {
  for (const split of ["lines", "whole", "bytes"] as const) {
    const session = new Session(CONFIG, CLIENT, 0);
    const text = "NOOP\r\nNOOP\r\n";
    const chunks = split === "whole" ? [text] : split === "lines" ? ["NOOP\r\n", "NOOP\r\n"] : [...text];
    let now = 0;
    for (const chunk of chunks) session.receive(enc(chunk), now += 10);
    assert.equal(session.deadline, now + TIMEOUT, split);
    assert.deepEqual(session.tick(now + TIMEOUT - 1), [], split);
    session.receive(enc("NO"), now + TIMEOUT - 1);
    assert.equal(session.deadline, now + TIMEOUT, `${split}: a partial line does not move it`);
    assert.equal(replies(session.tick(now + TIMEOUT)).length, 1, split);
    assert.ok(session.closed, split);
  }
});

test("inside DATA each content line must be complete within the data timeout of the line before it", () => {
  const session = new Session(CONFIG, CLIENT, 0);
  session.receive(enc("HELO c.example\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"), 100);
  session.receive(enc("Subject: slow\r\n"), 200_000);
  assert.equal(session.deadline, 200_000 + CONFIG.dataTimeoutMs);
  const gap = 30_000;
  const { closedAt, outputs } = drip(session, "x".repeat(100), 200_000 + gap, gap);
  assert.ok(
    closedAt !== undefined && closedAt >= 200_000 + CONFIG.dataTimeoutMs && closedAt < 200_000 + CONFIG.dataTimeoutMs + gap,
    `closed at ${closedAt}`,
  );
  assert.equal(outputs.filter((o) => o.type === "message-abort").length, 1);
  assert.match(replies(outputs)[0], /^421 4\.4\.2 /);
});

test("a session begun under stress has the shorter stress deadline, for commands and data", () => {
  const session = new Session(CONFIG, CLIENT, 0, { dnsbl: [], stress: true });
  assert.equal(session.deadline, CONFIG.stressTimeoutMs);
  session.receive(enc("HELO c.example\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"), 5);
  assert.equal(session.deadline, 5 + CONFIG.stressTimeoutMs);
  const calm = new Session(CONFIG, CLIENT, 0, { dnsbl: [], stress: false });
  assert.equal(calm.deadline, TIMEOUT);
});
