import { reply } from "../smtp/reply.ts";
import type { Check } from "./types.ts";

/** More than MXSCREEN_MAX_COMMANDS commands in one session: a client holding a slot open with chatter. */
export const commandLimit: Check = {
  id: "command-limit",
  tag: "LIMIT",
  stage: "command",
  consequence: "close",
  defaultAction: "enforce",
  evaluate(facts, settings) {
    if (facts.command === undefined || facts.commands < settings.maxCommands) return undefined;
    return {
      reply: reply(421, "4.7.0", `${settings.hostname} Error: too many commands; closing`),
      evidence: { limit: "commands", commands: facts.commands + 1 },
    };
  },
};
