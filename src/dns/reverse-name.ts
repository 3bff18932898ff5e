import type { IP } from "../ip/address.ts";

/** `192.0.2.1` → `1.2.0.192`; IPv6 → its 32 nibbles reversed: the label order of DNSBL and reverse zones. */
export function reversedLabels(ip: IP): string {
  if (ip.family === 4) {
    const v = ip.value;
    return `${v & 255}.${(v >>> 8) & 255}.${(v >>> 16) & 255}.${v >>> 24}`;
  }
  return ip.groups.flatMap((g) => g.toString(16).padStart(4, "0").split("")).reverse().join(".");
}

/** The PTR name of an address: `1.2.0.192.in-addr.arpa` or `….ip6.arpa`. */
export function ptrName(ip: IP): string {
  return `${reversedLabels(ip)}.${ip.family === 4 ? "in-addr.arpa" : "ip6.arpa"}`;
}
