import { domainToASCII } from "node:url";
import type { DnsAnswer, DnsClient } from "./types.ts";

/**
 * Whether a domain can receive mail (RFC 5321 5.1): its MX records, else its A, else its AAAA
 * records (the implicit MX), asked in parallel so that a dead server costs one timeout, not
 * three. `nxdomain` only when every answer said there is nothing; an error in any of them,
 * with nothing found, is an error: we cannot tell.
 */
export async function mailDomain(dns: DnsClient, domain: string): Promise<DnsAnswer> {
  // An internationalised domain (RFC 6531, after SMTPUTF8) is asked for by its A-labels.
  const name = /^[\x00-\x7f]*$/.test(domain) ? domain : domainToASCII(domain);
  if (name === "") return { status: "nxdomain" };
  const answers = await Promise.all((["MX", "A", "AAAA"] as const).map((type) => dns.query(name, type)));
  const found = answers.find((answer) => answer.status === "ok" && answer.records.length > 0);
  return found ?? answers.find((answer) => answer.status === "error") ?? { status: "nxdomain" };
}
