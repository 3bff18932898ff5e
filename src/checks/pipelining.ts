import { reply } from "./reply.ts";
import { defineCheck } from "./define-check.ts";

/**
 * A client that sends its next command before our reply, where RFC 2920 does not allow it:
 * PIPELINING was not offered, or the command must be the last of a group (postscreen's pipelining test).
 */
export const pipelining = defineCheck({
  id: "pipelining",
  tag: "PIPELINING",
  stage: "command",
  consequence: "close",
  defaultAction: "enforce",
  settings: {},
  evaluate(facts, settings) {
    const command = facts.command;
    if (command === undefined || !command.followedByMore) return undefined;
    if (facts.session.pipeliningOffered && !command.endsGroup) return undefined;
    return {
      reply: reply(554, "5.5.0", `${settings.hostname} Error: SMTP protocol synchronization; closing`),
      evidence: { command: command.verb, offered: facts.session.pipeliningOffered, ahead: command.ahead },
    };
  },
});
