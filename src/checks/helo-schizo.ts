import { reply } from "./reply.ts";
import { defineCheck } from "./define-check.ts";

/**
 * A second HELO/EHLO with a different argument: a bot that makes up a new name per command
 * (smtpf's helo-schizophrenic test). The same argument again is fine,
 * as after a refused EHLO. The bot is not worth another command: 550 and close, as smtpf did.
 */
export const heloSchizo = defineCheck({
  id: "helo-schizo",
  tag: "HELO-SCHIZO",
  stage: "helo",
  consequence: "close",
  defaultAction: "enforce",
  settings: {},
  evaluate(facts, settings) {
    const helos = facts.session.helos;
    if (helos.length < 2) return undefined;
    const current = helos[helos.length - 1].toLowerCase();
    const first = helos.find((helo) => helo.toLowerCase() !== current);
    if (first === undefined) return undefined;
    return {
      reply: reply(550, "5.7.1", `${settings.hostname} Error: client [${facts.client.address}] changed its HELO name; closing`),
      evidence: { helo: helos[helos.length - 1], earlier: first },
    };
  },
});
