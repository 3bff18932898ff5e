import { reply } from "./reply.ts";
import type { Check } from "./types.ts";

/** A command ended by LF without CR (RFC 5321 2.3.8): ratware that writes "\n" (postscreen's bare newline test). */
export const bareNewline: Check = {
  id: "bare-newline",
  tag: "BARE-LF",
  stage: "command",
  consequence: "close",
  defaultAction: "enforce",
  evaluate(facts, settings) {
    const command = facts.command;
    if (command === undefined || !command.bareLineFeed) return undefined;
    return {
      reply: reply(521, "5.5.2", `${settings.hostname} Error: bare <LF> received; lines end in <CR><LF>`),
      evidence: { sent: command.line },
    };
  },
};
