import { formatIP, type IP, parseIP } from "../ip/address.ts";
import { ptrName } from "./reverse-name.ts";
import type { DnsClient, ReverseDns } from "./types.ts";

/** PTR names checked forward: a client with many is not worth more lookups (Postfix checks a few too). */
const NAMES_CHECKED = 3;

/** Forward-confirmed reverse DNS: a PTR name whose A/AAAA records contain the client's address. */
export async function forwardConfirmedReverse(dns: DnsClient, ip: IP): Promise<ReverseDns> {
  const ptr = await dns.query(ptrName(ip), "PTR");
  if (ptr.status === "nxdomain" || (ptr.status === "ok" && ptr.records.length === 0)) return { status: "none" };
  if (ptr.status === "error") return { status: "temperror", reason: ptr.reason };
  const names = ptr.records.slice(0, NAMES_CHECKED);
  for (const name of names) {
    const forward = await dns.query(name, ip.family === 4 ? "A" : "AAAA");
    if (forward.status === "ok" && recordsContain(forward.records, ip)) return { status: "pass", name };
  }
  return { status: "fail", names };
}

/** A/AAAA records name this address (compared parsed: `2001:DB8::1` is `2001:db8:0::1`). */
export function recordsContain(records: readonly string[], ip: IP): boolean {
  const address = formatIP(ip);
  return records.map(parseIP).some((found) => found !== null && formatIP(found) === address);
}
