import { setting } from "../config/setting.ts";
import { integerBetween } from "../config/values.ts";
import { rateBreach } from "./rate-limit.ts";
import { reply } from "./reply.ts";
import { defineCheck } from "./define-check.ts";

const rate = integerBetween(0, 1_000_000);

/**
 * More new connections within a minute than allowed, from one address or from its /24 or /64,
 * counted at every node of the fleet together (Postfix anvil's
 * smtpd_client_connection_rate_limit, which counts one server's only). Counted by the gate at
 * accept, refused ones included, so a client that keeps knocking stays refused.
 */
export const connRate = defineCheck({
  id: "conn-rate",
  tag: "CONN-RATE",
  stage: "accept",
  consequence: "close",
  defaultAction: "enforce",
  settings: {
    maxConnRate: setting("MXSCREEN_MAX_CONN_RATE", "0", rate),
    maxConnRatePrefix: setting("MXSCREEN_MAX_CONN_RATE_PREFIX", "0", rate),
  },
  evaluate(facts, settings) {
    if (facts.connectionRate === undefined) return undefined;
    const breach = rateBreach(facts.connectionRate, 0, settings.maxConnRate, settings.maxConnRatePrefix);
    if (breach === undefined) return undefined;
    return {
      reply: reply(421, "4.7.0", `${settings.hostname} Error: too many connections from ${facts.client.address}`),
      evidence: {
        limit: breach.limit,
        key: breach.limit === "client" ? facts.client.address : facts.connectionRate.prefixKey,
        connections_per_minute: breach.count,
      },
    };
  },
});
