export interface Line {
  /**
   * The line without its terminator; for an over-long line, only its first bytes (evidence).
   * A view into the reader's buffer: valid until the next `push()`, copy it to keep it longer.
   */
  readonly bytes: Uint8Array;
  /** Ended by CRLF (true) or by a bare LF (false). */
  readonly crlf: boolean;
  /** Longer than the limit: the rest was discarded, memory stays bounded. */
  readonly tooLong: boolean;
}

const EVIDENCE_BYTES = 100;

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
  private discardedHead: Uint8Array | undefined;

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

  next(): Line | null {
    const lf = this.buffer.subarray(this.scanned, this.end).indexOf(0x0a);
    if (lf < 0) {
      this.scanned = this.end;
      if (this.discardedHead === undefined && this.end - this.start > this.maxLength) {
        this.discardedHead = this.buffer.slice(this.start, this.start + EVIDENCE_BYTES);
      }
      if (this.discardedHead !== undefined) {
        // Keep a trailing CR so that a CRLF split across two reads is still recognised.
        this.start = this.scanned = this.buffer[this.end - 1] === 0x0d ? this.end - 1 : this.end;
      }
      return null;
    }
    const at = this.scanned + lf;
    const crlf = at > this.start && this.buffer[at - 1] === 0x0d;
    const length = at + 1 - this.start;
    const content = this.buffer.subarray(this.start, crlf ? at - 1 : at);
    this.start = this.scanned = at + 1;
    const head = this.discardedHead;
    if (head !== undefined) {
      this.discardedHead = undefined;
      return { bytes: head, crlf, tooLong: true };
    }
    if (length > this.maxLength) return { bytes: content.subarray(0, EVIDENCE_BYTES), crlf, tooLong: true };
    return { bytes: content, crlf, tooLong: false };
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
