import { reply } from "./reply.ts";
import { defineCheck } from "./define-check.ts";

/** A command ended by LF without CR (RFC 5321 2.3.8): ratware that writes "\n" (postscreen's bare newline test). */
export const bareNewline = defineCheck({
  id: "bare-newline",
  tag: "BARE-LF",
  stage: "command",
  consequence: "close",
  defaultAction: "enforce",
  settings: {},
  evaluate(facts, settings) {
    const command = facts.command;
    if (command === undefined || !command.bareLineFeed) return undefined;
    return {
      reply: reply(521, "5.5.2", `${settings.hostname} Error: bare <LF> received; lines end in <CR><LF>`),
      evidence: { sent: command.line },
    };
  },
});
