import type { MessageContext } from "./types.ts";

/** RFC 5322 date-time in UTC, e.g. `Mon, 23 Nov 2026 00:41:34 +0000`. */
export function rfc5322Date(date: Date): string {
  return date.toUTCString().replace(/GMT$/, "+0000");
}

/**
 * The trace header of RFC 5321 4.4 naming the client's HELO and address. The HELO text is
 * client-supplied: the session allows no spaces or control characters in it, and parentheses
 * are replaced here so it cannot close the comment early.
 */
export function receivedHeader(context: MessageContext, id: string): string {
  const helo = context.envelope.helo.replace(/[()\\]/g, "?");
  const recipients = context.envelope.recipients;
  const forClause = recipients.length === 1 ? `\r\n\tfor <${recipients[0]}>` : "";
  return `Received: from ${helo} ([${context.clientAddress}])\r\n` +
    `\tby ${context.hostname} (mxscreen) with ${context.envelope.protocol} id ${id}${forClause};\r\n` +
    `\t${rfc5322Date(context.receivedAt)}\r\n`;
}

/**
 * The client's forward-confirmed reverse DNS for content filters downstream (RFC 8601 iprev
 * results): `pass (name)`, `fail (ptr names)`, `none`, `temperror`. PTR names come from DNS, which
 * anyone controlling a reverse zone writes: anything but host name characters becomes `?`.
 */
export function fcrdnsHeader(context: MessageContext): string {
  const reverse = context.envelope.reverseDns;
  const clean = (name: string) => name.replace(/[^A-Za-z0-9.-]/g, "?").slice(0, 253);
  let value: string;
  if (reverse === undefined) value = "temperror (no answer yet)";
  else if (reverse.status === "pass") value = `pass (${clean(reverse.name)})`;
  else if (reverse.status === "fail") value = `fail (ptr ${reverse.names.map(clean).join(" ")})`;
  else value = reverse.status;
  return `X-Mxscreen-FCrDNS: ${value}; client=[${context.clientAddress}]\r\n`;
}
