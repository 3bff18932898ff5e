import { reply } from "../smtp/reply.ts";
import type { Check } from "./types.ts";

/**
 * More than MXSCREEN_MAX_COMMANDS commands that carried no mail in one session: a client holding
 * a slot open with chatter. Commands that move mail (an accepted MAIL or RCPT, the DATA of a
 * delivered message, the RSET that ends a transaction) do not count, so a queue run of
 * MXSCREEN_MAX_TRANSACTIONS messages is never cut short by it.
 */
export const commandLimit: Check = {
  id: "command-limit",
  tag: "COMMAND-LIMIT",
  stage: "command",
  consequence: "close",
  defaultAction: "enforce",
  evaluate(facts, settings) {
    if (facts.command === undefined || facts.chatter < settings.maxCommands) return undefined;
    return {
      reply: reply(421, "4.7.0", `${settings.hostname} Error: too many commands; closing`),
      evidence: { limit: "commands", commands: facts.commands + 1, chatter: facts.chatter + 1 },
    };
  },
};
