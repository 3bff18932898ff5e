import { reply } from "../checks/reply.ts";
import type { Extensions } from "./extensions.ts";

type Parameters = ReadonlyMap<string, string | true>;

/** What MAIL FROM's parameters ask for, and the ones to pass on to the upstream as written. */
export type MailParameters =
  | { readonly ok: true; readonly declaredSize: number | undefined; readonly smtputf8: boolean; readonly forward: string }
  | { readonly ok: false; readonly reply: string };

export type RcptParameters = { readonly ok: true; readonly forward: string } | { readonly ok: false; readonly reply: string };

/** RFC 3461 4: xtext, printable ASCII with `+XX` escapes. */
const XTEXT = /^([\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})+$/;

const unsupported = (key: string) => ({ ok: false, reply: reply(555, "5.5.4", `Unsupported option: ${key}`) }) as const;
const invalid = (key: string, value: string | true) =>
  ({ ok: false, reply: reply(501, "5.5.4", `Bad ${key} parameter syntax: ${value === true ? "no value" : value.slice(0, 60)}`) }) as const;

/**
 * MAIL FROM's ESMTP parameters (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8, RFC 3461 RET
 * and ENVID): each is accepted only when offered, and passed on only where the way out takes it.
 */
export function mailParameters(params: Parameters, offered: Extensions): MailParameters {
  let declaredSize: number | undefined;
  let smtputf8 = false;
  const forward: string[] = [];
  for (const [key, value] of params) {
    if (key === "SIZE") {
      if (typeof value !== "string" || !/^\d{1,15}$/.test(value)) return unsupported(key);
      declaredSize = Number(value);
    } else if (key === "BODY") {
      if (typeof value !== "string" || !/^(7BIT|8BITMIME)$/i.test(value)) return unsupported(key);
      if (offered.eightBitMime) forward.push(`BODY=${value.toUpperCase()}`);
    } else if (key === "SMTPUTF8" && offered.smtputf8) {
      if (value !== true) return invalid(key, value);
      smtputf8 = true;
      forward.push("SMTPUTF8");
    } else if (key === "RET" && offered.dsn) {
      if (typeof value !== "string" || !/^(FULL|HDRS)$/i.test(value)) return invalid(key, value);
      forward.push(`RET=${value.toUpperCase()}`);
    } else if (key === "ENVID" && offered.dsn) {
      if (typeof value !== "string" || value.length > 100 || !XTEXT.test(value)) return invalid(key, value);
      forward.push(`ENVID=${value}`);
    } else {
      return unsupported(key);
    }
  }
  return { ok: true, declaredSize, smtputf8, forward: forward.map((p) => ` ${p}`).join("") };
}

/** RCPT TO's parameters: RFC 3461 NOTIFY and ORCPT when DSN is offered, passed on as written. */
export function rcptParameters(params: Parameters, offered: Extensions): RcptParameters {
  const forward: string[] = [];
  for (const [key, value] of params) {
    if (!offered.dsn || (key !== "NOTIFY" && key !== "ORCPT")) return unsupported(key);
    if (typeof value !== "string") return invalid(key, value);
    if (key === "NOTIFY" && !/^(NEVER|(SUCCESS|FAILURE|DELAY)(,(SUCCESS|FAILURE|DELAY)){0,2})$/i.test(value)) return invalid(key, value);
    if (key === "ORCPT" && (value.length > 500 || !/^[A-Za-z0-9-]+;/.test(value) || !XTEXT.test(value.slice(value.indexOf(";") + 1)))) {
      return invalid(key, value);
    }
    forward.push(`${key}=${key === "NOTIFY" ? value.toUpperCase() : value}`);
  }
  return { ok: true, forward: forward.map((p) => ` ${p}`).join("") };
}

/**
 * RFC 6531 3.2: a non-ASCII address needs SMTPUTF8 on its MAIL FROM; and what arrived must be
 * UTF-8 (an undecodable byte became U+FFFD, which would reach the upstream as other bytes).
 */
export function unicodeRefusal(mailbox: string, smtputf8: boolean): string | undefined {
  if (!/[^\x00-\x7f]/.test(mailbox)) return undefined;
  if (mailbox.includes("\uFFFD")) return reply(553, "5.6.7", "Malformed UTF-8 in the address");
  return smtputf8 ? undefined : reply(553, "5.6.7", "Must declare SMTPUTF8 to send unicode address");
}
