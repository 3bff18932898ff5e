import { setting } from "../config/setting.ts";
import { parseBoolean, parseMailboxList } from "../config/values.ts";
import { reply } from "./reply.ts";
import { defineCheck } from "./define-check.ts";

/**
 * A trap MX (MXSCREEN_TRAP=true: no real sender ever gets past RCPT here: a blackhole
 * high MX) or a spamtrap recipient (MXSCREEN_TRAP_RCPTS, OpenBSD spamd's greytrapping).
 */
export const trap = defineCheck({
  id: "trap",
  tag: "TRAP",
  stage: "rcpt",
  consequence: "close",
  defaultAction: "ban",
  settings: {
    trap: setting("MXSCREEN_TRAP", "false", parseBoolean),
    trapRecipients: setting("MXSCREEN_TRAP_RCPTS", "", parseMailboxList),
  },
  evaluate(facts, settings) {
    const recipient = facts.recipient;
    if (recipient === undefined) return undefined;
    const spamtrap = settings.trapRecipients.includes(recipient.mailbox.toLowerCase());
    if (!settings.trap && !spamtrap) return undefined;
    return {
      reply: reply(421, "4.3.2", `${settings.hostname} Service not available, closing transmission channel`),
      evidence: { recipient: recipient.mailbox, trap: spamtrap ? "spamtrap" : "trap-mx" },
    };
  },
});
