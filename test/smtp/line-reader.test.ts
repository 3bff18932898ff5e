import assert from "node:assert/strict";
import { LineReader } from "../../src/smtp/line-reader.ts";
import { test } from "../harness.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

type Seen = { kind: "line"; text: string; crlf: boolean } | { kind: "overlong"; text: string } | { kind: "overlong-end"; crlf: boolean };

function lines(reader: LineReader): Seen[] {
  const out: Seen[] = [];
  for (let l = reader.next(); l; l = reader.next()) {
    if (l.kind === "overlong-end") out.push({ kind: l.kind, crlf: l.crlf });
    else if (l.kind === "overlong") out.push({ kind: l.kind, text: dec(l.bytes) });
    else out.push({ kind: l.kind, text: dec(l.bytes), crlf: l.crlf });
  }
  return out;
}

/** Everything the reader reports for `text` pushed in `chunks`-sized pieces. */
function read(text: string, maxLength: number, chunk: number): Seen[] {
  const reader = new LineReader(maxLength);
  const bytes = enc(text);
  const seen: Seen[] = [];
  for (let i = 0; i < bytes.length; i += chunk) {
    reader.push(bytes.subarray(i, i + chunk));
    seen.push(...lines(reader));
  }
  return seen;
}

test("splits on CRLF and on bare LF, telling them apart", () => {
  const r = new LineReader(100);
  r.push(enc("one\r\ntwo\nthree"));
  assert.deepEqual(lines(r), [{ kind: "line", text: "one", crlf: true }, { kind: "line", text: "two", crlf: false }]);
  assert.equal(r.pending, 5);
  r.push(enc("\r\n"));
  assert.deepEqual(lines(r), [{ kind: "line", text: "three", crlf: true }]);
});

test("a CRLF split across two reads is still a CRLF", () => {
  const r = new LineReader(100);
  r.push(enc("abc\r"));
  assert.deepEqual(lines(r), []);
  r.push(enc("\n"));
  assert.deepEqual(lines(r), [{ kind: "line", text: "abc", crlf: true }]);
});

test("an over-long line is reported as soon as it passes the limit, before its LF, fed whole or byte by byte", () => {
  const text = "x".repeat(60);
  assert.deepEqual(read(text, 50, text.length), [{ kind: "overlong", text }]);
  assert.deepEqual(read(text, 50, 1), [{ kind: "overlong", text: "x".repeat(50) }]);
  // 49 bytes and no LF yet may still become a line of 50 with a bare LF.
  assert.deepEqual(read("x".repeat(49), 50, 1), []);
  assert.deepEqual(read(`${"x".repeat(49)}\n`, 50, 1), [{ kind: "line", text: "x".repeat(49), crlf: false }]);
});

test("the end of an over-long line comes once, with its terminator, and the next line is read as usual", () => {
  const text = `${"y".repeat(120)}\r\nnext\r\n${"z".repeat(70)}\n.\r\n`;
  const expected: Seen[] = [
    { kind: "overlong", text: "y".repeat(100) },
    { kind: "overlong-end", crlf: true },
    { kind: "line", text: "next", crlf: true },
    { kind: "overlong", text: "z".repeat(70) },
    { kind: "overlong-end", crlf: false },
    { kind: "line", text: ".", crlf: true },
  ];
  assert.deepEqual(read(text, 50, text.length), expected);
  const byByte = read(text, 50, 1);
  assert.deepEqual(byByte.map((s) => s.kind), expected.map((s) => s.kind));
  assert.deepEqual(byByte.filter((s) => s.kind !== "overlong"), expected.filter((s) => s.kind !== "overlong"));
  for (let split = 1; split < text.length; split++) {
    const reader = new LineReader(50);
    reader.push(enc(text.slice(0, split)));
    const seen = lines(reader);
    reader.push(enc(text.slice(split)));
    seen.push(...lines(reader));
    assert.deepEqual(seen.filter((s) => s.kind !== "overlong"), expected.filter((s) => s.kind !== "overlong"), `split at ${split}`);
  }
});

test("an endless line keeps memory bounded, is reported once and counts what it dropped", () => {
  const r = new LineReader(50);
  r.push(enc("x".repeat(1000)));
  assert.equal(lines(r).map((s) => s.kind).join(), "overlong");
  for (let i = 0; i < 999; i++) {
    r.push(enc("x".repeat(1000)));
    assert.equal(r.next(), null);
  }
  assert.ok(r.pending <= 50, `pending ${r.pending}`);
  assert.equal(r.overflow, 1_000_000);
  r.push(enc("\r\nnext\r\n"));
  assert.deepEqual(lines(r), [{ kind: "overlong-end", crlf: true }, { kind: "line", text: "next", crlf: true }]);
  assert.equal(r.overflow, 0);
});
