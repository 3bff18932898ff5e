import { setting } from "../config/setting.ts";
import { integerBetween } from "../config/values.ts";
import { rateBreach } from "./rate-limit.ts";
import { reply } from "./reply.ts";
import { defineCheck } from "./define-check.ts";

const rate = integerBetween(0, 100_000_000);

/**
 * More messages (MAIL transactions) within an hour than allowed, from one address or from its
 * /24 or /64, across the fleet (Postfix's smtpd_client_message_rate_limit, per server there):
 * the MAIL over it is deferred, the session goes on. Every MAIL is considered, the null
 * sender's too.
 */
export const msgRate = defineCheck({
  id: "msg-rate",
  tag: "MSG-RATE",
  stage: "command",
  consequence: "reject",
  defaultAction: "enforce",
  settings: {
    maxMsgRate: setting("MXSCREEN_MAX_MSG_RATE", "0", rate),
    maxMsgRatePrefix: setting("MXSCREEN_MAX_MSG_RATE_PREFIX", "0", rate),
  },
  evaluate(facts, settings) {
    if (facts.command?.verb !== "MAIL" || facts.rates === undefined) return undefined;
    const breach = rateBreach(facts.rates.messages, facts.session.transactions + 1, settings.maxMsgRate, settings.maxMsgRatePrefix);
    if (breach === undefined) return undefined;
    return {
      reply: reply(450, "4.7.1", `Error: too much mail from ${facts.client.address}`),
      evidence: {
        limit: breach.limit,
        key: breach.limit === "client" ? facts.client.address : facts.rates.messages.prefixKey,
        messages_per_hour: breach.count,
      },
    };
  },
});
