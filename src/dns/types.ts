/** The record types the checks ask for. */
export type DnsType = "A" | "AAAA" | "MX" | "PTR";

/**
 * One question's outcome. `ok` records are addresses (A, AAAA), exchange names (MX; `.` for a
 * null MX, RFC 7505) or names (PTR). `nxdomain` also covers a name without records of that
 * type. `error` is a failure to get an answer (timeout, SERVFAIL, refused): never a verdict.
 */
export type DnsAnswer =
  | { readonly status: "ok"; readonly records: readonly string[]; readonly ttl: number }
  | { readonly status: "nxdomain" }
  | { readonly status: "error"; readonly reason: string };

/** The resolver capability handed to whoever performs lookups for the core. */
export interface DnsClient {
  query(name: string, type: DnsType): Promise<DnsAnswer>;
}

/** A DNSBL/DNSWL zone's answer for the client. */
export interface DnsblAnswer {
  readonly zone: string;
  readonly answer: DnsAnswer;
}

/** Forward-confirmed reverse DNS of the client (RFC 8601's iprev). */
export type ReverseDns =
  | { readonly status: "pass"; readonly name: string }
  | { readonly status: "fail"; readonly names: readonly string[] }
  | { readonly status: "none" }
  | { readonly status: "temperror"; readonly reason: string };

/** The HELO name's forward DNS against the client's address: `match` is a good sign, `mismatch` only a weak bad one. */
export type HeloDns = "match" | "mismatch" | "none" | "temperror";
