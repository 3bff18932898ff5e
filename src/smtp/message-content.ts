import { type BounceScan, scanBounceLine } from "../checks/fake-bounce.ts";
import { reply } from "../checks/reply.ts";
import type { Line } from "./line-reader.ts";

const CR = 0x0d;
const CRLF = Uint8Array.of(CR, 0x0a);

export interface ContentRules {
  readonly maxMessageSize: number;
  readonly maxLineLength: number;
  readonly bareCr: "reject" | "normalize";
  /** Lower-case host names our mail leaves from: a bounce's Received: lines are scanned for them (the fake-bounce check). */
  readonly ownHosts: readonly string[];
}

/**
 * One message's content as DATA reads it, sans I/O (RFC 5321 4.5.2, 4.1.1.4): lines in,
 * unstuffed content lines out, each with CRLF; the end of data found; a message that cannot be
 * taken failed with the reply its final dot gets.
 */
export class MessageContent {
  /** Bytes of content so far (after unstuffing, with CRLFs). */
  private size = 0;
  private previousLineEndedCrlf = true;
  /** The reply the final dot gets: the message failed and its rest is being discarded. */
  failure: string | undefined;
  /** For a bounce: what its Received: lines said so far. */
  readonly bounce: BounceScan = { inReceived: false, namesUs: false };

  constructor(private readonly rules: ContentRules, private readonly isBounce: boolean) {}

  /**
   * One line read inside DATA: `end` for the final dot, `failed` when the message failed with
   * this line (drop what was passed on), otherwise each content line goes to `pass`.
   */
  take(line: Line, pass: (bytes: Uint8Array) => void, stuffed = true): "end" | "failed" | undefined {
    if (line.kind === "overlong") {
      return this.fail(reply(500, "5.5.2", `Error: line too long (limit ${this.rules.maxLineLength} octets, RFC 5321 4.5.3.1.6)`));
    }
    const crlf = line.crlf;
    // Only <CRLF>.<CRLF> ends the data: a dot after or before a bare LF is content
    // (the SMTP smuggling family of attacks lives in that difference).
    // A BDAT chunk (`stuffed` false) is counted in octets: a dot there is only content, never stuffed.
    const endsData = stuffed && line.kind === "line" && crlf && this.previousLineEndedCrlf && line.bytes.length === 1 &&
      line.bytes[0] === 0x2e;
    this.previousLineEndedCrlf = crlf;
    if (endsData) return "end";
    if (line.kind === "overlong-end" || this.failure !== undefined) return undefined;
    const bytes = line.bytes;
    const content = stuffed && bytes[0] === 0x2e ? bytes.subarray(1) : bytes;
    if (!content.includes(CR)) return this.contentLine(content, pass);
    // A bare CR is a line end to some MTAs and not to others: `<CR>.<CR>` smuggles a second
    // message past one that ends data there. It never goes on as it came.
    if (this.rules.bareCr === "reject") return this.fail(reply(550, "5.5.2", "Error: bare <CR> received in message content"));
    let from = 0;
    for (let cr = content.indexOf(CR); cr >= 0; cr = content.indexOf(CR, from)) {
      if (this.contentLine(content.subarray(from, cr), pass) === "failed") return "failed";
      from = cr + 1;
    }
    return this.contentLine(content.subarray(from), pass);
  }

  /** One line of content, without its line end, passed on with CRLF. */
  private contentLine(content: Uint8Array, pass: (bytes: Uint8Array) => void): "failed" | undefined {
    if (this.failure !== undefined) return undefined;
    if (this.isBounce && this.rules.ownHosts.length > 0) scanBounceLine(this.bounce, content, this.rules.ownHosts);
    this.size += content.length + 2;
    if (this.size > this.rules.maxMessageSize) return this.fail(reply(552, "5.3.4", "Message size exceeds fixed limit"));
    pass(content);
    pass(CRLF);
    return undefined;
  }

  private fail(answer: string): "failed" | undefined {
    if (this.failure !== undefined) return undefined;
    this.failure = answer;
    return "failed";
  }
}
