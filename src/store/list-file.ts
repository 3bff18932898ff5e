import { formatIP, formatPrefix, parseIP, parsePrefix } from "../ip/address.ts";
import type { ListKind } from "./types.ts";

/**
 * One logical line of a list file, read: an address or prefix to put on a list (the list
 * named by a Postfix action word, or the one being imported when there is none), or a line
 * refused with why.
 */
export type ListFileLine =
  | {
    readonly type: "entry";
    readonly line: number;
    readonly address: string;
    readonly list: ListKind | undefined;
    readonly reason: string | undefined;
    /** This entry's own TTL (a feed's decision duration); a file's lines take the import's. */
    readonly ttl?: string;
  }
  | { readonly type: "refused"; readonly line: number; readonly text: string; readonly error: string };

/** postscreen_access_list results (postscreen(8)): what each means here. */
const ACTIONS: Readonly<Record<string, ListKind | "dunno">> = { permit: "allow", reject: "ban", dunno: "dunno" };

/** Longest line text kept in a refusal, so a report of a binary file stays readable. */
const SHOWN = 120;

/**
 * Reads a list file: one address or CIDR prefix a line, then optionally a reason; `#` starts a
 * comment line; blank lines are skipped. Postfix cidr_table(5) lines as postscreen_access_list
 * has them are read too: `192.0.2.0/24 reject` is a ban, `permit` an allow entry (text after the
 * action is the reason), an address may be in `[]`, and a line that starts with whitespace
 * continues the one before. What a flat list cannot mean is refused with the line's number:
 * `dunno`, `!pattern`, `if`/`endif` (Postfix's first match has no order here: allow always
 * wins), and a prefix with host bits set, which Postfix skips as well.
 */
export function* readListFile(text: string, firstLine = 1): Generator<ListFileLine> {
  const lines = text.split("\n");
  let logical: { line: number; text: string } | undefined;
  for (let i = 0; i <= lines.length; i++) {
    const raw = i < lines.length ? lines[i].replace(/\r$/, "") : undefined;
    const trimmed = raw?.trim() ?? "";
    if (raw !== undefined && (trimmed === "" || trimmed.startsWith("#"))) continue;
    if (raw !== undefined && /^\s/.test(raw) && logical !== undefined) {
      logical.text += ` ${trimmed}`;
      continue;
    }
    if (logical !== undefined) yield readLine(logical.line, logical.text);
    logical = raw === undefined ? undefined : { line: firstLine + i, text: trimmed };
  }
}

function readLine(line: number, text: string): ListFileLine {
  const refuse = (error: string): ListFileLine => ({
    type: "refused",
    line,
    text: text.length > SHOWN ? `${text.slice(0, SHOWN)}…` : text,
    error,
  });
  const [first, second = "", ...more] = text.split(/\s+/);
  if (first.startsWith("!") || first === "if" || first === "endif") {
    return refuse(
      "Postfix's !pattern and if/endif have no equivalent in a list (allow always wins over a ban): write the entries they mean as plain lines",
    );
  }
  const address = first.replace(/^\[([^\]]*)\]/, "$1");
  const action = ACTIONS[second.toLowerCase()];
  if (action === "dunno") {
    return refuse("dunno has no equivalent in a list (there is no first-match order); leave the line out, or make it a permit");
  }
  const rest = (action === undefined ? [second, ...more] : more).join(" ").trim();
  const hostBits = hostBitsSet(address);
  if (hostBits !== undefined) {
    return refuse(`${address} has host bits set beyond its prefix length (Postfix skips such a line too): write ${hostBits}`);
  }
  return { type: "entry", line, address, list: action, reason: rest === "" ? undefined : rest };
}

/** The prefix written with its host bits cleared, when `address` (`192.0.2.1/24`) has any set. */
function hostBitsSet(address: string): string | undefined {
  const slash = address.indexOf("/");
  const ip = slash < 0 ? null : parseIP(address.slice(0, slash));
  const prefix = parsePrefix(address);
  if (ip === null || prefix === null || formatIP(ip) === formatIP(prefix.ip)) return undefined;
  return formatPrefix(prefix);
}
