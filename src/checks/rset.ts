import { reply } from "../smtp/reply.ts";
import type { Check } from "./types.ts";

/**
 * More than MXSCREEN_MAX_RSET resets, or more than MXSCREEN_MAX_TRANSACTIONS messages begun, in
 * one connection: a dictionary attack that resets after every few refused recipients (seed 003).
 * One RSET is legitimate (seed 003: Eudora broke on a stricter rule).
 */
export const rset: Check = {
  id: "rset",
  tag: "RSET",
  stage: "command",
  consequence: "close",
  defaultAction: "enforce",
  evaluate(facts, settings) {
    const verb = facts.command?.verb;
    const tooManyResets = verb === "RSET" && facts.resets >= settings.maxResets;
    const tooManyTransactions = verb === "MAIL" && facts.transactions >= settings.maxTransactions;
    if (!tooManyResets && !tooManyTransactions) return undefined;
    return {
      reply: reply(421, "4.7.0", `${settings.hostname} Error: too many ${tooManyResets ? "RSET commands" : "transactions"}; closing`),
      evidence: { resets: facts.resets + (tooManyResets ? 1 : 0), transactions: facts.transactions + (tooManyTransactions ? 1 : 0) },
    };
  },
};
