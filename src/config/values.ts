import { parseIP, parsePrefix, type Prefix } from "../ip/address.ts";
import { isMailbox } from "../smtp/path.ts";
import { ConfigError } from "./config-error.ts";

const SIZE_UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** `10485760`, `512k`, `25M` → bytes, a safe integer (below 8 PiB). */
export function parseSize(variable: string, text: string): number {
  const m = /^(\d+)\s*([kmg]?)i?b?$/i.exec(text.trim());
  if (!m) throw new ConfigError(variable, text, "a size in bytes, optionally with k, M or G (e.g. 25M)");
  const bytes = Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()];
  if (!Number.isSafeInteger(bytes)) throw new ConfigError(variable, text, `a size of at most ${Number.MAX_SAFE_INTEGER} bytes`);
  return bytes;
}

export function parseInteger(variable: string, text: string, min: number, max: number): number {
  const n = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || n < min || n > max) {
    throw new ConfigError(variable, text, `a whole number from ${min} to ${max}`);
  }
  return n;
}

/** A setting's parser for a whole number from `min` to `max` (parseInteger's bounds, bound early). */
export function integerBetween(min: number, max: number): (variable: string, text: string) => number {
  return (variable, text) => parseInteger(variable, text, min, max);
}

export function parseBoolean(variable: string, text: string): boolean {
  const t = text.trim().toLowerCase();
  if (["true", "yes", "1", "on"].includes(t)) return true;
  if (["false", "no", "0", "off"].includes(t)) return false;
  throw new ConfigError(variable, text, "true or false");
}

export function parseChoice<T extends string>(variable: string, text: string, choices: readonly T[]): T {
  const t = text.trim().toLowerCase();
  const found = choices.find((c) => c === t);
  if (!found) throw new ConfigError(variable, text, `one of ${choices.join(", ")}`);
  return found;
}

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** `0.0.0.0:2525`, `[::]:25`, comma separated. */
export function parseListen(variable: string, text: string): ListenAddress[] {
  const items = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (items.length === 0) throw new ConfigError(variable, text, "one or more host:port, e.g. 0.0.0.0:25,[::]:25");
  return items.map((item) => {
    const m = /^(?:\[([^\]]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(item);
    const host = m ? (m[1] ?? m[2]) : "";
    const port = m ? Number(m[3]) : -1;
    if (!m || port < 1 || port > 65535 || (m[1] !== undefined && parseIP(host)?.family !== 6)) {
      throw new ConfigError(variable, text, "host:port items such as 0.0.0.0:2525 or [::]:25");
    }
    return { host, port };
  });
}

export function parsePrefixList(variable: string, text: string): Prefix[] {
  return text.split(",").map((s) => s.trim()).filter((s) => s !== "").map((item) => {
    const prefix = parsePrefix(item);
    if (!prefix) throw new ConfigError(variable, text, `IP addresses or CIDR prefixes (${JSON.stringify(item)} is neither)`);
    return prefix;
  });
}

export function parseDomainList(variable: string, text: string): string[] {
  return text.split(",").map((s) => s.trim().toLowerCase()).filter((s) => s !== "").map((domain) => {
    if (!/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(domain)) {
      throw new ConfigError(variable, text, `domain names separated by commas (${JSON.stringify(domain)} is not one)`);
    }
    return domain;
  });
}

export function parseHostPort(variable: string, text: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(text.trim());
  const host = m ? (m[1] ?? m[2]) : "";
  const port = m ? Number(m[3]) : -1;
  const ip = parseIP(host);
  if (!m || !ip || port < 1 || port > 65535 || (m[1] !== undefined) !== (ip.family === 6)) {
    throw new ConfigError(variable, text, "one ip:port, e.g. 127.0.0.1:53 or [::1]:53");
  }
  return { host, port };
}

/** `trap@example.org,old@example.org` → lower-cased mailboxes. */
export function parseMailboxList(variable: string, text: string): string[] {
  return text.split(",").map((s) => s.trim().toLowerCase()).filter((s) => s !== "").map((mailbox) => {
    if (!isMailbox(mailbox)) {
      throw new ConfigError(variable, text, `mail addresses separated by commas (${JSON.stringify(mailbox)} is not one)`);
    }
    return mailbox;
  });
}

/** A whole number that may be negative (DNSBL/DNSWL scores). */
export function parseScore(variable: string, text: string): number {
  if (!/^-?\d{1,6}$/.test(text.trim())) throw new ConfigError(variable, text, "a whole number, e.g. 1 or -1");
  return Number(text.trim());
}
