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
