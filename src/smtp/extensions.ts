/**
 * Service extensions the session offers only when the mail's way out can honour them: the MTA
 * behind us must offer them too (a parameter it does not know would be refused there, after we
 * accepted it), while the spool takes UTF-8 addresses as they are but cannot act on DSN requests.
 */
export interface Extensions {
  /** RFC 6152: the way out takes BODY=8BITMIME (the session offers 8BITMIME itself either way). */
  readonly eightBitMime: boolean;
  /** RFC 6531: internationalised addresses. */
  readonly smtputf8: boolean;
  /** RFC 3461: RET, ENVID on MAIL; NOTIFY, ORCPT on RCPT. */
  readonly dsn: boolean;
  /** RFC 3030: BDAT. The upstream is sent DATA all the same: offered only where it takes BDAT too, should it be relayed as such later. */
  readonly chunking: boolean;
}

/** The spool stores UTF-8 addresses in its Return-Path and Delivered-To lines; it sends no DSN, and no bounce. */
export const SPOOL_EXTENSIONS: Extensions = { eightBitMime: true, smtputf8: true, dsn: false, chunking: true };

/** An upstream not reached since start: nothing is offered on its behalf until its EHLO is known. */
export const UNKNOWN_UPSTREAM: Extensions = { eightBitMime: false, smtputf8: false, dsn: false, chunking: false };

/** The EHLO keywords these extensions add to the session's own. */
export function ehloKeywords(extensions: Extensions): string[] {
  return [...(extensions.smtputf8 ? ["SMTPUTF8"] : []), ...(extensions.dsn ? ["DSN"] : []), ...(extensions.chunking ? ["CHUNKING"] : [])];
}
