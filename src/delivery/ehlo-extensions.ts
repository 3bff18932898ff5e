import type { Extensions } from "../smtp/extensions.ts";

/** The EHLO keywords (RFC 5321 4.1.1.1) of a `250` reply to EHLO, upper-cased, greeting line aside. */
export function ehloKeywordsOf(replyText: string): Set<string> {
  const lines = replyText.split("\r\n").filter((line) => line !== "").slice(1);
  return new Set(lines.map((line) => line.slice(4).trim().split(/\s+/)[0].toUpperCase()));
}

/** What an upstream's EHLO reply lets the session offer its clients. */
export function extensionsOf(keywords: ReadonlySet<string>): Extensions {
  return {
    eightBitMime: keywords.has("8BITMIME"),
    smtputf8: keywords.has("SMTPUTF8"),
    dsn: keywords.has("DSN"),
    chunking: keywords.has("CHUNKING"),
  };
}
