import { formatIP, parseIP, parseIPv6 } from "../ip/address.ts";
import { parseDomainList } from "../config/values.ts";
import { setting } from "../config/setting.ts";
import { reply } from "./reply.ts";
import { defineCheck } from "./define-check.ts";

/** What a HELO argument claims to be of ours, for the claims that only a forger makes. */
export interface Ours {
  /** MXSCREEN_HOSTNAME and MXSCREEN_OWN_NAMES, lower case. */
  readonly names: readonly string[];
  /** MXSCREEN_ACCEPT_DOMAINS: the domains we receive mail for. */
  readonly domains: readonly string[];
  /** Our listen addresses and the one this client connected to, as formatIP writes them. */
  readonly addresses: readonly string[];
}

/** The address a HELO argument names: `[192.0.2.1]`, `[IPv6:2001:db8::1]` or the bare address; undefined for a name. */
function namedAddress(helo: string): string | undefined {
  const literal = helo.startsWith("[") && helo.endsWith("]") ? helo.slice(1, -1) : helo;
  const ip = /^ipv6:/i.test(literal) ? parseIPv6(literal.slice(5)) : parseIP(literal);
  return ip === null ? undefined : formatIP(ip);
}

/**
 * What the HELO argument claims of ours, or undefined when it claims nothing. A client whose own
 * address it names is not forging (a host on our own network, loopback): that is its address too.
 */
export function heloClaim(helo: string, clientAddress: string, ours: Ours): string | undefined {
  const address = namedAddress(helo);
  if (address !== undefined) {
    const client = parseIP(clientAddress);
    if (client !== null && formatIP(client) === address) return undefined;
    return ours.addresses.includes(address) ? "our own address" : undefined;
  }
  const name = (helo.endsWith(".") ? helo.slice(0, -1) : helo).toLowerCase();
  if (ours.names.includes(name)) return "our own host name";
  if (ours.domains.includes(name)) return "one of our mail domains";
  return undefined;
}

/**
 * A HELO/EHLO naming us: our host name or another of our names, a domain we receive mail for,
 * or an address we listen on (as a literal or bare). No client of ours says that of itself:
 * ratware copies it from the banner, the recipient's domain or the address it connected to.
 * Answered at RCPT (delayed rejection), so postmaster@ and abuse@ still get through.
 */
export const heloClaims = defineCheck({
  id: "helo-claims",
  tag: "HELO-CLAIMS",
  stage: "helo",
  consequence: "delay",
  defaultAction: "enforce",
  settings: { ownNames: setting("MXSCREEN_OWN_NAMES", "", parseDomainList) },
  evaluate(facts, settings) {
    const helo = facts.session.helos[facts.session.helos.length - 1];
    if (helo === undefined) return undefined;
    const local = parseIP(facts.client.local?.address ?? "");
    const ours: Ours = {
      names: [settings.hostname.toLowerCase(), ...settings.ownNames],
      domains: settings.acceptDomains,
      addresses: local === null ? settings.listenAddresses : [...settings.listenAddresses, formatIP(local)],
    };
    const claim = heloClaim(helo, facts.client.address, ours);
    if (claim === undefined) return undefined;
    return {
      reply: reply(550, "5.7.1", `Helo command rejected: you are not ${claim === "our own address" ? "at our address" : "us"}`),
      evidence: { helo, claim },
    };
  },
});
