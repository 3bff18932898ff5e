import { setting } from "../config/setting.ts";
import { integerBetween } from "../config/values.ts";
import { reply } from "./reply.ts";
import { defineCheck } from "./define-check.ts";
import type { SessionView } from "./types.ts";

/** Commands that carried no mail: all but accepted MAIL and RCPT, the DATA (or BDAT chunks) of delivered messages and RSETs ending a transaction. */
function chatter(session: SessionView): number {
  return session.commands - session.transactions - session.recipients - session.messages - session.chunks - session.transactionResets;
}

/**
 * More than MXSCREEN_MAX_COMMANDS commands that carried no mail in one session: a client holding
 * a slot open with chatter. Commands that move mail (an accepted MAIL or RCPT, the DATA of a
 * delivered message, the RSET that ends a transaction) do not count, so a queue run of
 * MXSCREEN_MAX_TRANSACTIONS messages is never cut short by it.
 */
export const commandLimit = defineCheck({
  id: "command-limit",
  tag: "COMMAND-LIMIT",
  stage: "command",
  consequence: "close",
  defaultAction: "enforce",
  settings: { maxCommands: setting("MXSCREEN_MAX_COMMANDS", "1000", integerBetween(10, 1_000_000)) },
  evaluate(facts, settings) {
    if (facts.command === undefined || chatter(facts.session) < settings.maxCommands) return undefined;
    return {
      reply: reply(421, "4.7.0", `${settings.hostname} Error: too many commands; closing`),
      evidence: { limit: "commands", commands: facts.session.commands + 1, chatter: chatter(facts.session) + 1 },
    };
  },
});
