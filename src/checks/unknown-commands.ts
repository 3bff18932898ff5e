import { setting } from "../config/setting.ts";
import { integerBetween } from "../config/values.ts";
import { reply } from "./reply.ts";
import { defineCheck } from "./define-check.ts";

/** More than MXSCREEN_MAX_UNKNOWN unrecognised commands: a scanner or a bot speaking something else (qpsmtpd count_unrecognized_commands). */
export const unknownCommands = defineCheck({
  id: "unknown-commands",
  tag: "UNKNOWN-CMDS",
  stage: "command",
  consequence: "close",
  defaultAction: "enforce",
  settings: { maxUnknownCommands: setting("MXSCREEN_MAX_UNKNOWN", "3", integerBetween(0, 1000)) },
  evaluate(facts, settings) {
    const command = facts.command;
    if (command === undefined || command.known || facts.session.unknownCommands < settings.maxUnknownCommands) return undefined;
    return {
      reply: reply(421, "4.7.0", `${settings.hostname} Error: too many unrecognized commands; closing`),
      evidence: { unknown: facts.session.unknownCommands + 1, last: command.line },
    };
  },
});
