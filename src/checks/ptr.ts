import { defineCheck } from "./define-check.ts";

/**
 * Missing or not forward-confirmed reverse DNS (a warning, never a reason to deny: many real senders lack it). Never a
 * refusal: it is recorded, and spooled mail carries it in `X-Mxscreen-FCrDNS:` for content filters.
 */
export const ptr = defineCheck({
  id: "ptr",
  tag: "PTR",
  stage: "end",
  consequence: "record",
  defaultAction: "ignore",
  settings: {},
  evaluate(facts) {
    const reverse = facts.reverseDns;
    if (reverse === undefined || reverse.status === "pass") return undefined;
    return {
      reply: "",
      evidence: {
        fcrdns: reverse.status,
        ptr: reverse.status === "fail" ? reverse.names.join(",") : undefined,
        dns: reverse.status === "temperror" ? reverse.reason : undefined,
      },
    };
  },
});
