/** Formats an SMTP reply (RFC 5321 4.2), multi-line when given several lines, with its enhanced status code (RFC 3463). */
export function reply(code: number, enhanced: string | null, ...lines: string[]): string {
  const prefix = enhanced === null ? "" : `${enhanced} `;
  return lines
    .map((line, i) => `${code}${i === lines.length - 1 ? " " : "-"}${prefix}${line}\r\n`)
    .join("");
}
