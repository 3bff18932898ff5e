import { reply } from "../smtp/reply.ts";
import type { Check } from "./types.ts";

/** RFC 2920 3.1: these must end a group; only a reply may follow them. */
const LAST_IN_GROUP = new Set(["EHLO", "HELO", "DATA", "VRFY", "EXPN", "TURN", "QUIT", "NOOP", "STARTTLS", "AUTH"]);

/**
 * A client that sends its next command before our reply, where RFC 2920 does not allow it:
 * PIPELINING was not offered, or the command must be the last of a group (seeds 000, 004).
 */
export const pipelining: Check = {
  id: "pipelining",
  tag: "PIPELINING",
  stage: "command",
  consequence: "close",
  defaultAction: "enforce",
  evaluate(facts, settings) {
    const command = facts.command;
    if (command === undefined || !command.followedByMore) return undefined;
    if (facts.pipeliningOffered && !LAST_IN_GROUP.has(command.verb)) return undefined;
    return {
      reply: reply(554, "5.5.0", `${settings.hostname} Error: SMTP protocol synchronization; closing`),
      evidence: { command: command.verb, offered: facts.pipeliningOffered, ahead: command.ahead },
    };
  },
};
