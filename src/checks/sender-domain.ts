import { reply } from "./reply.ts";
import { defineCheck } from "./define-check.ts";

/**
 * MAIL FROM a domain that cannot receive mail (no MX, A or AAAA, or a null MX): nobody could
 * answer a bounce, so the sender is made up (RFC 7505: a null MX says so outright). A DNS failure is a temporary refusal,
 * never a rejection. `<>` and address literals are not looked up; no callout is made to anyone.
 */
export const senderDomain = defineCheck({
  id: "sender-domain",
  tag: "SENDER-DOMAIN",
  stage: "mail",
  consequence: "reject",
  defaultAction: "enforce",
  settings: {},
  evaluate(facts) {
    const answer = facts.senderDomainAnswer;
    const sender = facts.sender;
    if (answer === undefined || sender === undefined) return undefined;
    const domain = sender.slice(sender.lastIndexOf("@") + 1);
    if (answer.status === "error") {
      return {
        reply: reply(450, "4.1.8", `<${sender}>: Sender address rejected: Domain not found (DNS: ${answer.reason})`),
        evidence: { sender, domain, dns: answer.reason },
      };
    }
    const nullMx = answer.status === "ok" && answer.records.length === 1 && answer.records[0] === ".";
    if (answer.status === "ok" && !nullMx) return undefined;
    return {
      reply: reply(
        550,
        "5.1.8",
        `<${sender}>: Sender address rejected: ${nullMx ? "Domain accepts no mail (null MX)" : "Domain not found"}`,
      ),
      evidence: { sender, domain, dns: nullMx ? "null-mx" : "nxdomain" },
    };
  },
});
