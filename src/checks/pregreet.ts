import { defineCheck } from "./define-check.ts";

/**
 * A client that talks before the final `220 ` of the greet wait: ratware that does not read
 * what it is told (postscreen's pregreet test). It gets no reply: it is not listening.
 */
export const pregreet = defineCheck({
  id: "pregreet",
  tag: "PREGREET",
  stage: "greet",
  consequence: "close",
  defaultAction: "ban",
  settings: {},
  evaluate(facts) {
    return { reply: "", evidence: { after_ms: facts.afterMs, sent: facts.sent } };
  },
});
