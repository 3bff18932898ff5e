import { reply } from "../checks/reply.ts";
import { defineCheck } from "../checks/define-check.ts";
import { parseDuration } from "../config/duration.ts";
import { setting } from "../config/setting.ts";
import { parseBoolean } from "../config/values.ts";

/**
 * MXSCREEN_GREYLIST=true: a (network, sender, recipient) triplet seen for the first time, or
 * retried too soon, is deferred; real MTAs retry, most ratware does not (OpenBSD spamd's and postgrey's premise). The store
 * decides; clients on the pass list or allowed skip it.
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
  },
  evaluate(facts) {
    if (facts.greylist !== "defer" || facts.recipient === undefined) return undefined;
    return {
      reply: reply(451, "4.7.1", `<${facts.recipient.mailbox}>: Recipient address rejected: Greylisted, try again later`),
      evidence: { recipient: facts.recipient.mailbox, sender: facts.sender },
    };
  },
});
