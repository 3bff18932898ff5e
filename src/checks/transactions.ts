import { setting } from "../config/setting.ts";
import { integerBetween } from "../config/values.ts";
import { reply } from "./reply.ts";
import { defineCheck } from "./define-check.ts";

/**
 * More than MXSCREEN_MAX_TRANSACTIONS MAIL transactions in one connection. The default is
 * Exim's smtp_accept_max_per_connection (1000): a queue run delivers that many at a time and
 * must never be cut short; far beyond it a connection is a pipe for bulk, not a sender.
 */
export const transactions = defineCheck({
  id: "transactions",
  tag: "TRANSACTIONS",
  stage: "command",
  consequence: "close",
  defaultAction: "enforce",
  settings: { maxTransactions: setting("MXSCREEN_MAX_TRANSACTIONS", "1000", integerBetween(1, 100_000)) },
  evaluate(facts, settings) {
    if (facts.command?.verb !== "MAIL" || facts.session.transactions < settings.maxTransactions) return undefined;
    return {
      reply: reply(421, "4.7.0", `${settings.hostname} Error: too many transactions in one connection; closing`),
      evidence: { transactions: facts.session.transactions + 1 },
    };
  },
});
