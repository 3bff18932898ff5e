/** MAIL FROM / RCPT TO arguments (RFC 5321 4.1.2), parsed leniently where real senders are sloppy. */

export interface PathArgument {
  /** The mailbox, or "" for the null path `<>`. */
  readonly mailbox: string;
  readonly params: ReadonlyMap<string, string | true>;
}

export type PathError = "syntax" | "mailbox";

// Non-ASCII characters are RFC 6531's UTF8-non-ascii; whether the client may send them (it
// declared SMTPUTF8) is the session's question, not the syntax's.
const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u{80}-\u{10FFFF}-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u{80}-\u{10FFFF}-]+)*$/u;
const QUOTED = /^"([\x20\x21\x23-\x5b\x5d-\x7e\u{80}-\u{10FFFF}]|\\[\x20-\x7e])*"$/u;
const DOMAIN =
  /^(?=.{1,255}$)([A-Za-z0-9\u{80}-\u{10FFFF}](?:[A-Za-z0-9\u{80}-\u{10FFFF}-]{0,61}[A-Za-z0-9\u{80}-\u{10FFFF}])?)(\.[A-Za-z0-9\u{80}-\u{10FFFF}](?:[A-Za-z0-9\u{80}-\u{10FFFF}-]{0,61}[A-Za-z0-9\u{80}-\u{10FFFF}])?)*\.?$/u;
const LITERAL = /^\[[\x21-\x5a\x5e-\x7e]+\]$/;

export function isMailbox(mailbox: string): boolean {
  const at = mailbox.lastIndexOf("@");
  if (at <= 0) return false;
  const local = mailbox.slice(0, at);
  const domain = mailbox.slice(at + 1);
  return local.length <= 64 && (DOT_ATOM.test(local) || QUOTED.test(local)) &&
    (DOMAIN.test(domain) || LITERAL.test(domain));
}

/**
 * `text` is what follows `FROM:` or `TO:`. Accepts `<path>` with an optional space before it,
 * strips an obsolete source route (`<@a,@b:user@c>`), and splits ESMTP parameters.
 */
export function parsePath(text: string, allowBare: string[] = []): PathArgument | PathError {
  const trimmed = text.replace(/^ /, "");
  let path: string;
  let rest: string;
  if (trimmed.startsWith("<")) {
    const close = trimmed.indexOf(">");
    if (close < 0) return "syntax";
    path = trimmed.slice(1, close);
    rest = trimmed.slice(close + 1);
    if (rest !== "" && !rest.startsWith(" ")) return "syntax";
  } else {
    const space = trimmed.indexOf(" ");
    path = space < 0 ? trimmed : trimmed.slice(0, space);
    rest = space < 0 ? "" : trimmed.slice(space);
    if (path === "") return "syntax";
  }
  const route = /^@[^:]+:/.exec(path);
  if (route) path = path.slice(route[0].length);
  if (path !== "" && !isMailbox(path) && !allowBare.includes(path.toLowerCase())) return "mailbox";
  const params = new Map<string, string | true>();
  for (const item of rest.split(" ").filter((s) => s !== "")) {
    const eq = item.indexOf("=");
    const key = (eq < 0 ? item : item.slice(0, eq)).toUpperCase();
    if (!/^[A-Z0-9][A-Z0-9-]*$/.test(key)) return "syntax";
    params.set(key, eq < 0 ? true : item.slice(eq + 1));
  }
  return { mailbox: path, params };
}

export function domainOf(mailbox: string): string {
  return mailbox.slice(mailbox.lastIndexOf("@") + 1).toLowerCase().replace(/\.$/, "");
}
