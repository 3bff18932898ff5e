/** One SMTP reply from a server: its code and its lines as sent (CRLF-terminated). */
export interface Reply {
  readonly code: number;
  readonly text: string;
}

const MAX_REPLY_BYTES = 64 * 1024;
/** Each byte one character: an upstream's reply is ASCII, and whatever else it sends stays a byte we can report. */
const latin1 = new TextDecoder("latin1");

/** Reads replies out of a server's byte stream (RFC 5321 4.2: `ddd-` lines, then `ddd `), sans I/O. */
export class ReplyReader {
  private buffered = "";
  private lines: string[] = [];

  /** Returns the replies completed by `bytes`; throws on something that is not SMTP. */
  push(bytes: Uint8Array): Reply[] {
    this.buffered += latin1.decode(bytes);
    if (this.buffered.length > MAX_REPLY_BYTES) throw new Error("the upstream sent an over-long reply");
    const replies: Reply[] = [];
    let end: number;
    while ((end = this.buffered.indexOf("\n")) >= 0) {
      const line = this.buffered.slice(0, end + 1).replace(/\r?\n$/, "\r\n");
      this.buffered = this.buffered.slice(end + 1);
      const m = /^(\d{3})([ -])/.exec(line);
      if (!m && !/^\d{3}\r\n$/.test(line)) {
        throw new Error(`the upstream sent a line that is not an SMTP reply: ${JSON.stringify(line.slice(0, 80))}`);
      }
      this.lines.push(m ? line : line.replace(/\r\n$/, " \r\n"));
      if (!m || m[2] === " ") {
        replies.push({ code: Number(line.slice(0, 3)), text: this.lines.join("") });
        this.lines = [];
      }
    }
    return replies;
  }
}

/** RFC 3461 xtext, as XCLIENT attribute values need it. */
export function xtext(value: string): string {
  return [...new TextEncoder().encode(value)].map((
    b,
  ) => (b < 33 || b > 126 || b === 0x2b || b === 0x3d ? `+${b.toString(16).toUpperCase().padStart(2, "0")}` : String.fromCharCode(b))).join(
    "",
  );
}
