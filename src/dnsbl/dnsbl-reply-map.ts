import { readFileSync } from "node:fs";
import { ConfigError } from "../config/config-error.ts";

/**
 * Zone → the name a refused client is shown instead (postscreen_dnsbl_reply_map): a zone that
 * carries an account key (Spamhaus DQS: `KEY.zen.dq.spamhaus.net`) must never be spelled out in
 * a reply. A plain object, so that it travels to session workers as it is.
 */
export type DnsblReplyMap = Readonly<Record<string, string>>;

const SHOWN = /^[\x21-\x7e]([\x20-\x7e]{0,198}[\x21-\x7e])?$/;

/**
 * Reads the file MXSCREEN_DNSBL_REPLY_MAP names, Postfix texthash style: one `zone  name`
 * per line (the name is the rest of the line, printable ASCII, at most 200 characters), `#`
 * comments and blank lines ignored. Read once at start: a file that cannot be read or a line
 * that is not one stops start-up, naming the file and the line.
 */
export function parseDnsblReplyMap(variable: string, path: string): DnsblReplyMap {
  if (path.trim() === "") return {};
  let text: string;
  try {
    text = readFileSync(path.trim(), "utf8");
  } catch (error) {
    throw new ConfigError(variable, path, `a readable file of "zone name" lines (${(error as Error).message})`);
  }
  const map: Record<string, string> = {};
  text.split("\n").forEach((raw, index) => {
    const line = raw.replace(/#.*$/, "").trim();
    if (line === "") return;
    const m = /^(\S+)\s+(.+)$/.exec(line);
    const zone = m?.[1].toLowerCase().replace(/\.$/, "");
    if (!m || zone === undefined || !/^[a-z0-9.-]+$/.test(zone) || !SHOWN.test(m[2])) {
      throw new ConfigError(
        variable,
        path,
        `"zone name" lines, the name printable ASCII of at most 200 characters (line ${index + 1} is not one: ${
          JSON.stringify(raw.slice(0, 80))
        })`,
      );
    }
    map[zone] = m[2];
  });
  return map;
}

/** What a refused client is told the zone is: its mapped name, else the zone itself. */
export function shownZone(map: DnsblReplyMap, zone: string): string {
  return Object.hasOwn(map, zone) ? map[zone] : zone;
}
