/** DNSBL and DNSWL: the check with its scoring, the zone list, and the lookups made at accept. */
export { dnsbl, dnswlStanding } from "./dnsbl.ts";
export { DnsblLookups, type DnsblPending } from "./dnsbl-lookups.ts";
export { DnsblVerdicts } from "./dnsbl-verdicts.ts";
