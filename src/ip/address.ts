/**
 * IP addresses as the screen sees them: parsed once, compared by prefix.
 * IPv4 is kept as an unsigned 32-bit number; IPv6 as eight 16-bit groups.
 */

export type Family = 4 | 6;

export interface IPv4 {
  readonly family: 4;
  readonly value: number;
}

export interface IPv6 {
  readonly family: 6;
  readonly groups: readonly number[];
}

export type IP = IPv4 | IPv6;

export interface Prefix {
  readonly ip: IP;
  readonly length: number;
}

const V4_PART = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function parseIPv4(text: string): IPv4 | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!V4_PART.test(part)) return null;
    value = value * 256 + Number(part);
  }
  return { family: 4, value };
}

export function parseIPv6(text: string): IPv6 | null {
  const zone = text.indexOf("%");
  if (zone >= 0) text = text.slice(0, zone);
  if (text.includes(".")) {
    const lastColon = text.lastIndexOf(":");
    const v4 = parseIPv4(text.slice(lastColon + 1));
    if (!v4) return null;
    text = `${text.slice(0, lastColon + 1)}${(v4.value >>> 16).toString(16)}:${(v4.value & 0xffff).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const parse = (s: string): number[] | null => {
    if (s === "") return [];
    const out: number[] = [];
    for (const g of s.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parse(halves[0]);
  if (!head) return null;
  if (halves.length === 1) return head.length === 8 ? { family: 6, groups: head } : null;
  const rest = parse(halves[1]);
  if (!rest) return null;
  const known = head.length + rest.length;
  if (known > 7) return null;
  const groups = [...head, ...new Array<number>(8 - known).fill(0), ...rest];
  return { family: 6, groups };
}

/** Parses an address as sockets report it, including IPv4-mapped IPv6 (`::ffff:192.0.2.1`), which becomes IPv4. */
export function parseIP(text: string): IP | null {
  const v4 = parseIPv4(text);
  if (v4) return v4;
  const v6 = parseIPv6(text);
  if (!v6) return null;
  const g = v6.groups;
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return { family: 4, value: g[6] * 65536 + g[7] };
  }
  return v6;
}

export function formatIP(ip: IP): string {
  if (ip.family === 4) {
    const v = ip.value;
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  const g = ip.groups;
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((n) => n.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

export function maxLength(ip: IP): number {
  return ip.family === 4 ? 32 : 128;
}

/** Zeroes every bit past `length`. */
export function mask(ip: IP, length: number): IP {
  if (ip.family === 4) {
    const value = length === 0 ? 0 : (ip.value & (~0 << (32 - length))) >>> 0;
    return { family: 4, value };
  }
  const groups = ip.groups.map((group, i) => {
    const keep = Math.max(0, Math.min(16, length - i * 16));
    return keep === 0 ? 0 : group & ((0xffff << (16 - keep)) & 0xffff);
  });
  return { family: 6, groups };
}

/** Parses `192.0.2.0/24`, `2001:db8::/32` or a bare address (a host prefix). */
export function parsePrefix(text: string): Prefix | null {
  const slash = text.indexOf("/");
  const ip = parseIP(slash < 0 ? text : text.slice(0, slash));
  if (!ip) return null;
  if (slash < 0) return { ip, length: maxLength(ip) };
  const lengthText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lengthText)) return null;
  const length = Number(lengthText);
  if (length > maxLength(ip)) return null;
  return { ip: mask(ip, length), length };
}

export function formatPrefix(prefix: Prefix): string {
  return `${formatIP(prefix.ip)}/${prefix.length}`;
}

/**
 * The prefix that bans and counters apply to by default: the address itself for IPv4,
 * its /64 for IPv6, since one IPv6 host can rotate through a whole /64 at will.
 */
export function clientPrefix(ip: IP, v6Length = 64): Prefix {
  return ip.family === 4 ? { ip, length: 32 } : { ip: mask(ip, v6Length), length: v6Length };
}

/** The network a client belongs to for counting across addresses: its /24 (IPv4) or /64 (IPv6). */
export function networkOf(ip: IP): Prefix {
  const length = ip.family === 4 ? 24 : 64;
  return { ip: mask(ip, length), length };
}

export function contains(prefix: Prefix, ip: IP): boolean {
  if (prefix.ip.family !== ip.family) return false;
  const masked = mask(ip, prefix.length);
  if (masked.family === 4) return masked.value === (prefix.ip as IPv4).value;
  const want = (prefix.ip as IPv6).groups;
  return masked.groups.every((g, i) => g === want[i]);
}
