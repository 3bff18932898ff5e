import { type Line, LineReader } from "./line-reader.ts";

const CR = 0x0d;

/**
 * The content of a message sent in BDAT chunks (RFC 3030), as the lines DATA would have read:
 * a chunk may end anywhere, inside a line or between the CR and the LF, so lines are cut across
 * chunks, and the last line is a line even without its line end.
 */
export class ChunkLines {
  private readonly reader: LineReader;

  constructor(maxLineLength: number) {
    this.reader = new LineReader(maxLineLength);
  }

  /** Bytes of a chunk; each line they complete goes to `take`. True when at least one did. */
  push(bytes: Uint8Array, take: (line: Line) => void): boolean {
    this.reader.push(bytes);
    return this.drain(take);
  }

  /** The last chunk is read: what is left of a line is ended, as DATA's final CRLF would. */
  end(take: (line: Line) => void): void {
    const left = this.reader.waiting(Infinity);
    if (left.length === 0 && this.reader.overflow === 0) return;
    this.reader.push(left.length > 0 && left[left.length - 1] === CR ? Uint8Array.of(0x0a) : Uint8Array.of(CR, 0x0a));
    this.drain(take);
  }

  private drain(take: (line: Line) => void): boolean {
    let took = false;
    for (let line = this.reader.next(); line !== null; line = this.reader.next()) {
      took = true;
      take(line);
    }
    return took;
  }
}
