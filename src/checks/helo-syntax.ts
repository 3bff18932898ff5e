import { formatIP, parseIP, parseIPv4, parseIPv6 } from "../ip/address.ts";
import { reply } from "./reply.ts";
import { defineCheck } from "./define-check.ts";

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/** Why a HELO/EHLO argument is not what RFC 5321 4.1.3 and 2.3.5 ask of a client, or undefined when it is. */
export function heloProblem(helo: string, clientAddress: string): string | undefined {
  if (helo.startsWith("[") && helo.endsWith("]")) {
    const literal = helo.slice(1, -1);
    const ip = /^ipv6:/i.test(literal) ? parseIPv6(literal.slice(5)) : parseIPv4(literal);
    if (ip === null) return "invalid address literal";
    const client = parseIP(clientAddress);
    if (client === null || formatIP(ip) !== formatIP(client)) return "address literal is not the client's address";
    return undefined;
  }
  if (parseIPv4(helo) !== null || parseIP(helo) !== null) return "bare IP address without brackets";
  const name = helo.endsWith(".") ? helo.slice(0, -1) : helo;
  const labels = name.split(".");
  if (name.length > 253 || !labels.every((label) => LABEL.test(label))) return "invalid characters in host name";
  if (labels.length < 2 || /^\d+$/.test(labels[labels.length - 1])) return "not a fully qualified domain name";
  return undefined;
}

/**
 * HELO/EHLO argument syntax (RFC 5321 4.1.3, 2.3.5): a bare dotted IP, a literal that is not
 * the client's address, a name that is not fully qualified, invalid characters (a name or
 * address of ours is helo-claims').
 * Answered at RCPT (delayed rejection), so postmaster@ and abuse@ still get through.
 */
export const heloSyntax = defineCheck({
  id: "helo-syntax",
  tag: "HELO",
  stage: "helo",
  consequence: "delay",
  defaultAction: "enforce",
  settings: {},
  evaluate(facts) {
    const helo = facts.session.helos[facts.session.helos.length - 1];
    if (helo === undefined) return undefined;
    const problem = heloProblem(helo, facts.client.address);
    if (problem === undefined) return undefined;
    return {
      reply: reply(550, "5.7.1", `Helo command rejected: ${problem}`),
      evidence: { helo, problem },
    };
  },
});
