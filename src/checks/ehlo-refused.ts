import { defineCheck } from "./define-check.ts";

/**
 * With MXSCREEN_EHLO_REFUSAL=true, a client not yet passed gets `502 5.5.1` to EHLO; a bot
 * that quits or disconnects instead of falling back to HELO is caught here
 * (seed 000: smtpf's ehlo-no-helo, 63% of its junk).
 */
export const ehloRefused = defineCheck({
  id: "ehlo-refused",
  tag: "EHLO-REFUSED",
  stage: "end",
  consequence: "record",
  defaultAction: "ban",
  settings: {},
  evaluate(facts) {
    if (!facts.session.ehloRefusedUnanswered) return undefined;
    return { reply: "", evidence: { helo: facts.session.helos[facts.session.helos.length - 1], commands: facts.session.commands } };
  },
});
