import { reply } from "../checks/reply.ts";
import { defineCheck } from "../checks/define-check.ts";
import { parseDuration } from "../config/duration.ts";
import { setting } from "../config/setting.ts";
import { integerBetween, parseBoolean } from "../config/values.ts";
import type { ReverseDns } from "../dns/types.ts";
import { formatPrefix, mask, parseIP } from "../ip/address.ts";

/**
 * The greylist triplet: the client's network (its forward-confirmed domain minus the first
 * label, so a sender pool retrying from another address is not delayed again; else its
 * /24 or /64), the sender and the recipient.
 */
export function greylistTriplet(clientAddress: string, reverse: ReverseDns | undefined, sender: string, recipient: string): string {
  const labels = reverse?.status === "pass" ? reverse.name.split(".") : [];
  const ip = parseIP(clientAddress);
  const network = labels.length >= 3
    ? labels.slice(1).join(".")
    : ip === null
    ? clientAddress
    : formatPrefix({ ip: mask(ip, ip.family === 4 ? 24 : 64), length: ip.family === 4 ? 24 : 64 });
  return `${network} <${sender.toLowerCase()}> <${recipient.toLowerCase()}>`;
}

/**
 * MXSCREEN_GREYLIST=true: a (network, sender, recipient) triplet seen for the first time, or
 * retried too soon, is deferred; real MTAs retry, most ratware does not (OpenBSD spamd's and
 * postgrey's premise). The store decides; clients on the pass list or allowed skip it.
 */
export const greylist = defineCheck({
  id: "greylist",
  tag: "GREYLIST",
  stage: "triplet",
  consequence: "reject",
  defaultAction: "enforce",
  settings: {
    greylist: setting("MXSCREEN_GREYLIST", "false", parseBoolean),
    greylistDelayMs: setting("MXSCREEN_GREYLIST_DELAY", "5m", parseDuration),
    greylistWindowMs: setting("MXSCREEN_GREYLIST_WINDOW", "4h", parseDuration),
    greylistPassTtlMs: setting("MXSCREEN_GREYLIST_PASS_TTL", "35d", parseDuration),
    greylistMaxTriplets: setting("MXSCREEN_GREYLIST_MAX_TRIPLETS", "500000", integerBetween(1000, 100_000_000)),
  },
  evaluate(facts) {
    if (facts.greylist !== "defer" || facts.recipient === undefined) return undefined;
    return {
      reply: reply(451, "4.7.1", `<${facts.recipient.mailbox}>: Recipient address rejected: Greylisted, try again later`),
      evidence: { recipient: facts.recipient.mailbox, sender: facts.sender },
    };
  },
});
