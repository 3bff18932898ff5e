import { setting } from "../config/setting.ts";
import { integerBetween } from "../config/values.ts";
import { reply } from "./reply.ts";
import { defineCheck } from "./define-check.ts";
import type { SessionView } from "./types.ts";

/** A MAIL was accepted since the last RSET (or since the session began): an RSET now ends a transaction. */
export function mailSinceReset(session: SessionView): boolean {
  return session.transactions > session.transactionsAtReset;
}

/**
 * More than MXSCREEN_MAX_RSET resets in one connection that ended no transaction: a client
 * holding its slot with chatter, or probing. An RSET after a MAIL is how a sender ends one
 * message before the next (an Exim queue run), and never counts; one idle RSET is legitimate too
 * (Eudora broke on a stricter rule). Dictionary attacks that reset between batches of
 * refused recipients are the dictionary check's, which counts the recipients themselves.
 */
export const rset = defineCheck({
  id: "rset",
  tag: "RSET",
  stage: "command",
  consequence: "close",
  defaultAction: "enforce",
  settings: { maxResets: setting("MXSCREEN_MAX_RSET", "5", integerBetween(1, 1000)) },
  evaluate(facts, settings) {
    if (facts.command?.verb !== "RSET" || mailSinceReset(facts.session) || facts.session.resets < settings.maxResets) return undefined;
    return {
      reply: reply(421, "4.7.0", `${settings.hostname} Error: too many RSET commands; closing`),
      evidence: { resets: facts.session.resets + 1 },
    };
  },
});
