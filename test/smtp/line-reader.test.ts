import assert from "node:assert/strict";
import { LineReader } from "../../src/smtp/line-reader.ts";
import { test } from "../harness.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function lines(reader: LineReader) {
  const out: { text: string; crlf: boolean; tooLong: boolean }[] = [];
  for (let l = reader.next(); l; l = reader.next()) out.push({ text: dec(l.bytes), crlf: l.crlf, tooLong: l.tooLong });
  return out;
}

test("splits on CRLF and on bare LF, telling them apart", () => {
  const r = new LineReader(100);
  r.push(enc("one\r\ntwo\nthree"));
  assert.deepEqual(lines(r), [{ text: "one", crlf: true, tooLong: false }, { text: "two", crlf: false, tooLong: false }]);
  assert.equal(r.pending, 5);
  r.push(enc("\r\n"));
  assert.deepEqual(lines(r), [{ text: "three", crlf: true, tooLong: false }]);
});

test("a CRLF split across two reads is still a CRLF", () => {
  const r = new LineReader(100);
  r.push(enc("abc\r"));
  assert.deepEqual(lines(r), []);
  r.push(enc("\n"));
  assert.deepEqual(lines(r), [{ text: "abc", crlf: true, tooLong: false }]);
});

test("an endless line keeps memory bounded and is reported once, too long", () => {
  const r = new LineReader(50);
  for (let i = 0; i < 1000; i++) {
    r.push(enc("x".repeat(1000)));
    assert.equal(r.next(), null);
  }
  assert.ok(r.pending <= 50, `pending ${r.pending}`);
  r.push(enc("\r\nnext\r\n"));
  const got = lines(r);
  assert.equal(got.length, 2);
  assert.equal(got[0].tooLong, true);
  assert.equal(got[0].crlf, true);
  assert.equal(got[1].text, "next");
});
