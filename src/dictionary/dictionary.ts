import { parseDuration } from "../config/duration.ts";
import { setting } from "../config/setting.ts";
import { integerBetween } from "../config/values.ts";
import { reply } from "../checks/reply.ts";
import { defineCheck } from "../checks/define-check.ts";

/**
 * More than MXSCREEN_MAX_BAD_RCPT unknown recipients in one connection: a dictionary attack
 * (refusing the recipients one by one does not stem the flood; disconnecting does).
 */
export const dictionary = defineCheck({
  id: "dictionary",
  tag: "DICTIONARY",
  stage: "rcpt",
  consequence: "close",
  defaultAction: "ban",
  settings: {
    maxBadRecipients: setting("MXSCREEN_MAX_BAD_RCPT", "5", integerBetween(0, 100_000)),
    /** Counted by the gate across connections (bad-recipient-window.ts). */
    maxBadRecipientsPerPrefix: setting("MXSCREEN_MAX_BAD_RCPT_PREFIX", "20", integerBetween(1, 1_000_000)),
    badRecipientWindowMs: setting("MXSCREEN_BAD_RCPT_WINDOW", "1h", parseDuration),
  },
  evaluate(facts, settings) {
    const recipient = facts.recipient;
    if (recipient === undefined || recipient.known || facts.session.badRecipients < settings.maxBadRecipients) return undefined;
    return {
      reply: reply(421, "4.7.0", `${settings.hostname} Error: too many unknown recipients; closing`),
      evidence: { bad_recipients: facts.session.badRecipients + 1, last: recipient.mailbox },
    };
  },
});
