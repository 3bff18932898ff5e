import { reply } from "../checks/reply.ts";
import { defineCheck } from "../checks/define-check.ts";

/**
 * MXSCREEN_GREYLIST=true: a (network, sender, recipient) triplet seen for the first time, or
 * retried too soon, is deferred; real MTAs retry, most ratware does not (seed 004). The store
 * decides; clients on the pass list or allowed skip it.
 */
export const greylist = defineCheck({
  id: "greylist",
  tag: "GREYLIST",
  stage: "triplet",
  consequence: "reject",
  defaultAction: "enforce",
  settings: {},
  evaluate(facts) {
    if (facts.greylist !== "defer" || facts.recipient === undefined) return undefined;
    return {
      reply: reply(451, "4.7.1", `<${facts.recipient.mailbox}>: Recipient address rejected: Greylisted, try again later`),
      evidence: { recipient: facts.recipient.mailbox, sender: facts.sender },
    };
  },
});
