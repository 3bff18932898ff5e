import { setting } from "../config/setting.ts";
import { parseBoolean } from "../config/values.ts";
import { defineCheck } from "./define-check.ts";
import { reply } from "./reply.ts";

/** The answer to EHLO from a client not yet passed, with MXSCREEN_EHLO_REFUSAL=true: a real MTA falls back to HELO (RFC 5321 3.2). */
export const EHLO_REFUSAL = reply(502, "5.5.1", "Error: EHLO not supported, send HELO");

/** Whether this client's EHLO is refused: the knob is on, and the client has not passed or been allowed. */
export function refusesEhlo(
  settings: { readonly ehloRefusal: boolean },
  client: { readonly passed: boolean; readonly allowed: boolean },
): boolean {
  return settings.ehloRefusal && !client.passed && !client.allowed;
}

/**
 * With MXSCREEN_EHLO_REFUSAL=true, a client not yet passed gets `502 5.5.1` to EHLO; a bot
 * that quits or disconnects instead of falling back to HELO is caught here
 * (smtpf's ehlo-no-helo test).
 */
export const ehloRefused = defineCheck({
  id: "ehlo-refused",
  tag: "EHLO-REFUSED",
  stage: "end",
  consequence: "record",
  defaultAction: "ban",
  settings: { ehloRefusal: setting("MXSCREEN_EHLO_REFUSAL", "false", parseBoolean) },
  evaluate(facts) {
    if (!facts.session.ehloRefusedUnanswered) return undefined;
    return { reply: "", evidence: { helo: facts.session.helos[facts.session.helos.length - 1], commands: facts.session.commands } };
  },
});
