import type { IP } from "../ip/address.ts";
import { recordsContain } from "./fcrdns.ts";
import type { DnsClient, HeloDns } from "./types.ts";

/** Whether the HELO name's A (or AAAA, for an IPv6 client) records contain the client's address. */
export async function heloNameDns(dns: DnsClient, name: string, ip: IP): Promise<HeloDns> {
  const answer = await dns.query(name, ip.family === 4 ? "A" : "AAAA");
  if (answer.status === "error") return "temperror";
  if (answer.status === "nxdomain") return "none";
  return recordsContain(answer.records, ip) ? "match" : "mismatch";
}
