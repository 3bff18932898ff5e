/**
 * What the reader found next in the stream. An over-long line comes as two events: `overlong`
 * as soon as it passes the limit, so it can be answered before its end ever comes, and
 * `overlong-end` when its LF arrives, so what follows it is read as a new line.
 *
 * `bytes` is a view into the reader's buffer: valid until the next `push()`, copy it to keep it longer.
 */
export type Line =
  /** A line within the limit, without its terminator; `crlf`: ended by CRLF, not by a bare LF. */
  | { readonly kind: "line"; readonly bytes: Uint8Array; readonly crlf: boolean }
  /** A line longer than the limit: its first bytes (evidence); the rest is discarded, memory stays bounded. */
  | { readonly kind: "overlong"; readonly bytes: Uint8Array }
  /** The end of the over-long line: `crlf` as for a line; `length`: all its bytes, terminator included. */
  | { readonly kind: "overlong-end"; readonly crlf: boolean; readonly length: number };

const EVIDENCE_BYTES = 100;
const CR = 0x0d;
const LF = 0x0a;

/**
 * Splits a byte stream into lines. A line counts its terminator toward `maxLength`
 * (RFC 5321 4.5.3.1.4 and 4.5.3.1.6 count the CRLF); bytes past the limit are dropped until
 * the line ends, so a client can never make us buffer more than `maxLength` of one line
 * beyond one read, provided `next()` is called until it returns null after each `push()`.
 */
export class LineReader {
  private buffer = new Uint8Array(4096);
  private start = 0;
  private end = 0;
  private scanned = 0;
  /** Inside an over-long line already reported: how many of its bytes were dropped so far. */
  private dropping: { bytes: number } | undefined;

  constructor(private readonly maxLength: number) {}

  push(chunk: Uint8Array): void {
    if (this.end + chunk.length > this.buffer.length) this.compact(chunk.length);
    this.buffer.set(chunk, this.end);
    this.end += chunk.length;
  }

  /** Bytes received but not yet returned as lines. */
  get pending(): number {
    return this.end - this.start;
  }

  /** The first `limit` bytes received but not yet returned as lines, after the first `skip`, as a view (valid until the next `push()`). */
  waiting(limit: number, skip = 0): Uint8Array {
    const from = Math.min(this.end, this.start + skip);
    return this.buffer.subarray(from, Math.min(this.end, from + limit));
  }

  /**
   * Up to `limit` bytes as they came, not split into lines (a BDAT chunk: RFC 3030 counts
   * octets), as a view valid until the next `push()`. Only between lines.
   */
  take(limit: number): Uint8Array {
    if (this.dropping !== undefined) throw new Error("LineReader.take() inside an over-long line");
    const end = Math.min(this.end, this.start + limit);
    const bytes = this.buffer.subarray(this.start, end);
    this.start = this.scanned = end;
    return bytes;
  }

  /** Bytes of the over-long line at hand dropped so far; 0 outside one. */
  get overflow(): number {
    return this.dropping?.bytes ?? 0;
  }

  next(): Line | null {
    const lf = this.buffer.subarray(this.scanned, this.end).indexOf(LF);
    if (this.dropping !== undefined) return lf < 0 ? this.drop(this.dropping) : this.endOverlong(this.dropping, this.scanned + lf);
    if (lf < 0) {
      this.scanned = this.end;
      // Even ended at once by a bare LF, this line would be over the limit.
      if (this.end - this.start < this.maxLength) return null;
      const bytes = this.evidence(this.end);
      this.dropping = { bytes: 0 };
      this.drop(this.dropping);
      return { kind: "overlong", bytes };
    }
    const at = this.scanned + lf;
    if (at + 1 - this.start > this.maxLength) {
      // The whole line is here: reported now, its end at the next call.
      this.dropping = { bytes: 0 };
      return { kind: "overlong", bytes: this.evidence(at) };
    }
    const crlf = at > this.start && this.buffer[at - 1] === CR;
    const bytes = this.buffer.subarray(this.start, crlf ? at - 1 : at);
    this.start = this.scanned = at + 1;
    return { kind: "line", bytes, crlf };
  }

  /** The first bytes of the line at hand, which ends before `end`. */
  private evidence(end: number): Uint8Array {
    return this.buffer.subarray(this.start, Math.min(end, this.start + EVIDENCE_BYTES));
  }

  /** Drops what is buffered of the over-long line but a trailing CR, so that a CRLF split across two reads is still recognised. */
  private drop(dropping: { bytes: number }): null {
    const keep = this.end > this.start && this.buffer[this.end - 1] === CR ? this.end - 1 : this.end;
    dropping.bytes += keep - this.start;
    this.start = this.scanned = keep;
    return null;
  }

  private endOverlong(dropping: { bytes: number }, at: number): Line {
    const crlf = at > this.start && this.buffer[at - 1] === CR;
    dropping.bytes += at + 1 - this.start;
    this.start = this.scanned = at + 1;
    this.dropping = undefined;
    return { kind: "overlong-end", crlf, length: dropping.bytes };
  }

  private compact(extra: number): void {
    const live = this.end - this.start;
    const target = live + extra <= this.buffer.length ? this.buffer : new Uint8Array((live + extra) * 2);
    target.set(this.buffer.subarray(this.start, this.end), 0);
    this.scanned -= this.start;
    this.start = 0;
    this.end = live;
    this.buffer = target;
  }
}
