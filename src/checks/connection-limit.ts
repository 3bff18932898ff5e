import { setting } from "../config/setting.ts";
import { integerBetween } from "../config/values.ts";
import { reply } from "./reply.ts";
import { defineCheck } from "./define-check.ts";

/**
 * A new connection over the per-client, per-prefix or total limit (postscreen's
 * client_connection_count_limit and pre_queue_limit), counted by the gate before the greeting.
 */
export const connectionLimit = defineCheck({
  id: "connection-limit",
  tag: "CONNECTION-LIMIT",
  stage: "accept",
  consequence: "close",
  defaultAction: "enforce",
  settings: {
    /** Counted by the gate (connection-limits.ts); the total, MXSCREEN_MAX_CONNECTIONS, follows the open-files limit. */
    maxConnPerClient: setting("MXSCREEN_MAX_CONN_PER_CLIENT", "10", integerBetween(1, 1_000_000)),
    maxConnPerPrefix: setting("MXSCREEN_MAX_CONN_PER_PREFIX", "50", integerBetween(1, 1_000_000)),
  },
  evaluate(facts, settings) {
    const breach = facts.breach;
    if (breach === undefined) return undefined;
    return {
      reply: breach.limit === "total"
        ? reply(421, "4.3.2", `${settings.hostname} All server ports are busy, try again later`)
        : reply(421, "4.7.0", `${settings.hostname} Error: too many connections from ${facts.client.address}`),
      evidence: { limit: breach.limit, key: breach.key, connections: breach.count },
    };
  },
});
