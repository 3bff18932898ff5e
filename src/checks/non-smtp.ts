import { reply } from "./reply.ts";
import { defineCheck } from "./define-check.ts";

/** HTTP, proxy and POP3 verbs a confused or probing client sends to port 25 (postscreen's non_smtp_command). */
const FOREIGN_VERBS = new Set(["GET", "HEAD", "POST", "PUT", "OPTIONS", "CONNECT", "USER", "PASS"]);

/** A header line such as `Host: mx.example` where a command belongs: an HTTP request or a message body sent too early. */
const HEADER_LIKE = /^[A-Z0-9][A-Z0-9-]*:$/;

export const nonSmtp = defineCheck({
  id: "non-smtp",
  tag: "NON-SMTP",
  stage: "command",
  consequence: "close",
  defaultAction: "enforce",
  settings: {},
  evaluate(facts, settings) {
    const command = facts.command;
    if (command === undefined || !(FOREIGN_VERBS.has(command.verb) || HEADER_LIKE.test(command.verb))) return undefined;
    return {
      reply: reply(521, "5.5.1", `${settings.hostname} Error: non-SMTP command; closing`),
      evidence: { sent: command.line },
    };
  },
});
