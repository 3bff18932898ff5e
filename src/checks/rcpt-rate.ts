import { setting } from "../config/setting.ts";
import { integerBetween } from "../config/values.ts";
import { rateBreach } from "./rate-limit.ts";
import { reply } from "./reply.ts";
import { defineCheck } from "./define-check.ts";

const rate = integerBetween(0, 100_000_000);

/**
 * More recipients within an hour than allowed, from one address or from its /24 or /64,
 * across the fleet (Postfix's smtpd_client_recipient_rate_limit, per server there): the RCPT
 * over it is deferred, the session goes on. Counted are recipients accepted.
 */
export const rcptRate = defineCheck({
  id: "rcpt-rate",
  tag: "RCPT-RATE",
  stage: "rcpt",
  consequence: "reject",
  defaultAction: "enforce",
  settings: {
    maxRcptRate: setting("MXSCREEN_MAX_RCPT_RATE", "0", rate),
    maxRcptRatePrefix: setting("MXSCREEN_MAX_RCPT_RATE_PREFIX", "0", rate),
  },
  evaluate(facts, settings) {
    if (facts.recipient === undefined || facts.rates === undefined) return undefined;
    const breach = rateBreach(facts.rates.recipients, facts.session.recipients + 1, settings.maxRcptRate, settings.maxRcptRatePrefix);
    if (breach === undefined) return undefined;
    return {
      reply: reply(450, "4.7.1", `<${facts.recipient.mailbox}>: Error: too many recipients from ${facts.client.address}`),
      evidence: {
        limit: breach.limit,
        key: breach.limit === "client" ? facts.client.address : facts.rates.recipients.prefixKey,
        recipients_per_hour: breach.count,
        rcpt: facts.recipient.mailbox,
      },
    };
  },
});
