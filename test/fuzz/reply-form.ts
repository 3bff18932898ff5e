/** RFC 5321 4.5.3.1.5: a reply line is at most 512 octets, its CRLF included. */
export const MAX_REPLY_LINE = 512;

/**
 * Why `text` is not one well-formed SMTP reply (RFC 5321 4.2): `ddd` and `-` or a space and
 * text on every line, CRLF after each, one code for all lines of a multi-line reply, only the
 * last with a space, nothing but printable ASCII. Undefined when it is well formed.
 */
const WELL_FORMED = /^(?:([2-5][0-9][0-9])-[\x20-\x7e]*\r\n(?:\1-[\x20-\x7e]*\r\n)*\1|[2-5][0-9][0-9]) [\x20-\x7e]*\r\n$/;
const SHORT_LINES = new RegExp(`^(?:[^\\r]{0,${MAX_REPLY_LINE - 2}}\\r\\n)*$`);

export function replyProblem(text: string): string | undefined {
  // The common case at one regular expression's cost; the walk below names what is wrong.
  if (WELL_FORMED.test(text) && SHORT_LINES.test(text)) return undefined;
  if (!text.endsWith("\r\n")) return "reply does not end in CRLF";
  const lines = text.slice(0, -2).split("\r\n");
  const code = lines[0].slice(0, 3);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.length + 2 > MAX_REPLY_LINE) return `reply line over ${MAX_REPLY_LINE} octets with its CRLF (RFC 5321 4.5.3.1.5)`;
    if (!/^[2-5][0-9][0-9][- ]/.test(line)) return "reply line does not start with a code and - or space";
    if (line.slice(0, 3) !== code) return "multi-line reply with more than one code";
    const last = i === lines.length - 1;
    if (line[3] !== (last ? " " : "-")) {
      return last ? "last reply line has - after its code" : "reply line before the last has a space after its code";
    }
    for (let j = 4; j < line.length; j++) {
      const c = line.charCodeAt(j);
      if (c < 0x20 || c > 0x7e) {
        return c > 0x7f ? "reply text outside ASCII" : "reply text with a control character (bare CR or LF, NUL, ...)";
      }
    }
  }
  return undefined;
}
