/** RFC 5321 4.5.3.1.5: a reply line is at most 512 octets, its CRLF included. */
export const MAX_REPLY_LINE = 512;

/**
 * One reply line made safe to send: anything but printable ASCII becomes `?` (a client's or an
 * upstream's bytes never reach another client raw, and a stray CR or LF cannot start a reply of
 * its own), then clipped so that with its CRLF it fits in MAX_REPLY_LINE octets.
 */
function boundedLine(line: string): string {
  return `${line.replace(/[^\x20-\x7e]/g, "?").slice(0, MAX_REPLY_LINE - 2)}\r\n`;
}

/**
 * Formats an SMTP reply (RFC 5321 4.2), multi-line when given several lines, with its enhanced
 * status code (RFC 3463). Lines may carry client text: each is made safe and clipped.
 */
export function reply(code: number, enhanced: string | null, ...lines: string[]): string {
  const prefix = enhanced === null ? "" : `${enhanced} `;
  return lines
    .map((line, i) => boundedLine(`${code}${i === lines.length - 1 ? " " : "-"}${prefix}${line}`))
    .join("");
}

/**
 * A reply text from elsewhere (the upstream MTA's, or one built by substitution) held to the
 * same rules as `reply`: every line printable ASCII, at most 512 octets with its CRLF.
 */
export function boundedReply(text: string): string {
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines.map((line) => boundedLine(line.endsWith("\r") ? line.slice(0, -1) : line)).join("");
}
