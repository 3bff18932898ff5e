import { parseBoolean } from "../config/values.ts";
import { parseDuration } from "../config/duration.ts";
import { setting } from "../config/setting.ts";
import { reply } from "./reply.ts";
import { defineCheck } from "./define-check.ts";

/**
 * A client that sends its next command before our reply, where RFC 2920 does not allow it:
 * PIPELINING was not offered, or the command must be the last of a group (postscreen's pipelining test).
 * Seen two ways: bytes behind a command in the same read, or a command that arrived before the
 * final line of a paced reply was written (stutter: for clients not yet passed, the reply to
 * HELO, EHLO, MAIL and RCPT waits MXSCREEN_STUTTER_DELAY before its final line, so a client that
 * does not read replies is caught whatever its timing).
 */
export const pipelining = defineCheck({
  id: "pipelining",
  tag: "PIPELINING",
  stage: "command",
  consequence: "close",
  defaultAction: "enforce",
  settings: {
    stutter: setting("MXSCREEN_STUTTER", "true", parseBoolean),
    stutterDelayMs: setting("MXSCREEN_STUTTER_DELAY", "500ms", parseDuration),
  },
  evaluate(facts, settings) {
    const command = facts.command;
    if (command === undefined) return undefined;
    const offered = facts.session.pipeliningOffered;
    const reply554 = reply(554, "5.5.0", `${settings.hostname} Error: SMTP protocol synchronization; closing`);
    const early = command.early;
    if (early !== undefined && (!offered || early.endsGroup)) {
      // As a same-read hit says it: the command whose reply it did not wait for, and what came ahead.
      return { reply: reply554, evidence: { command: early.verb, offered, ahead: command.line, before_final_line: true } };
    }
    if (!command.followedByMore || (offered && !command.endsGroup)) return undefined;
    return { reply: reply554, evidence: { command: command.verb, offered, ahead: command.ahead } };
  },
});
