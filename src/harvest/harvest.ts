import { defineCheck } from "../checks/define-check.ts";
import { setting } from "../config/setting.ts";
import { integerBetween } from "../config/values.ts";
import { MAX_PER_NETWORK } from "./prefix-clients.ts";

/**
 * A distributed dictionary attack on one of our domains (seed 003: thousands of hosts, a few
 * guesses each, at every MX): once the fleet has counted more unknown recipients at a domain
 * within MXSCREEN_BAD_RCPT_WINDOW than MXSCREEN_HARVEST_THRESHOLD (harvest-watch.ts), a client not
 * yet passed is greylisted for that domain's recipients, whatever MXSCREEN_GREYLIST says: a real
 * MTA retries, a harvester moves on. What happens at the end of a harvesting session (the pass
 * taken back, a prefix ban) is harvest-defence.ts's, with this check's action.
 */
export const harvest = defineCheck({
  id: "harvest",
  tag: "HARVEST",
  stage: "recipient",
  consequence: "greylist",
  defaultAction: "ban",
  settings: {
    harvestThreshold: setting("MXSCREEN_HARVEST_THRESHOLD", "100", integerBetween(1, 100_000_000)),
    harvestPrefixClients: setting("MXSCREEN_HARVEST_PREFIX_CLIENTS", "5", integerBetween(2, MAX_PER_NETWORK)),
  },
  evaluate(facts) {
    const recipient = facts.recipient;
    if (recipient === undefined || !recipient.known || facts.harvested.length === 0) return undefined;
    const domain = recipient.mailbox.slice(recipient.mailbox.lastIndexOf("@") + 1).toLowerCase();
    const harvested = facts.harvested.find(([name]) => name === domain);
    if (harvested === undefined) return undefined;
    // Greylisting answers the recipient (the greylist check's 451): this hit only sends it there.
    return { reply: "", evidence: { domain, domain_bad_recipients: harvested[1], recipient: recipient.mailbox } };
  },
});
