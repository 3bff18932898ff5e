import { reply } from "../checks/reply.ts";
import type { Check } from "../checks/types.ts";

/**
 * More than MXSCREEN_MAX_BAD_RCPT unknown recipients in one connection: a dictionary attack
 * (seed 003: refusing the recipients one by one did not stem the flood; disconnecting does).
 */
export const dictionary: Check = {
  id: "dictionary",
  tag: "DICTIONARY",
  stage: "rcpt",
  consequence: "close",
  defaultAction: "ban",
  evaluate(facts, settings) {
    const recipient = facts.recipient;
    if (recipient === undefined || recipient.known || facts.badRecipients < settings.maxBadRecipients) return undefined;
    return {
      reply: reply(421, "4.7.0", `${settings.hostname} Error: too many unknown recipients; closing`),
      evidence: { bad_recipients: facts.badRecipients + 1, last: recipient.mailbox },
    };
  },
};
