import { setting } from "../config/setting.ts";
import { parseDomainList } from "../config/values.ts";
import { bytesToText } from "../log/escape.ts";
import { reply } from "./reply.ts";
import { defineCheck } from "./define-check.ts";

/**
 * Whether a line of a Received: header names one of our hosts as a whole name: `mx1.example.org`
 * is named in `by mx1.example.org (Postfix)`, not in `notmx1.example.org` or `mx1.example.org.evil`.
 */
export function namesOwnHost(line: string, ownHosts: readonly string[]): boolean {
  const text = line.toLowerCase();
  return ownHosts.some((host) => {
    for (let at = text.indexOf(host); at >= 0; at = text.indexOf(host, at + 1)) {
      const before = text[at - 1] ?? " ";
      const after = text.slice(at + host.length, at + host.length + 2);
      if (!/[a-z0-9.-]/.test(before) && !/^([a-z0-9-]|\.[a-z0-9])/.test(after)) return true;
    }
    return false;
  });
}

/** What the Received: lines of a bounce said so far, line by line. */
export interface BounceScan {
  /** Inside a (possibly folded) Received: header line. */
  inReceived: boolean;
  /** A Received: line named one of our hosts. */
  namesUs: boolean;
}

/** One line of a bounce's content: Received: lines anywhere (the returned message's headers are in its body), with their folded continuations. */
export function scanBounceLine(scan: BounceScan, content: Uint8Array, ownHosts: readonly string[]): void {
  if (scan.namesUs) return;
  const folded = content[0] === 0x20 || content[0] === 0x09;
  if (!folded) scan.inReceived = /^received:/i.test(bytesToText(content, 9));
  if (scan.inReceived && namesOwnHost(bytesToText(content, content.length), ownHosts)) scan.namesUs = true;
}

/**
 * A bounce (null sender) whose body holds no Received: line naming one of MXSCREEN_OWN_HOSTS:
 * not about a message we sent, so backscatter or spam dressed as a bounce.
 * Off until MXSCREEN_OWN_HOSTS is set.
 */
export const fakeBounce = defineCheck({
  id: "fake-bounce",
  tag: "FAKE-BOUNCE",
  stage: "data",
  consequence: "reject",
  defaultAction: "enforce",
  settings: { ownHosts: setting("MXSCREEN_OWN_HOSTS", "", parseDomainList) },
  evaluate(facts, settings) {
    if (settings.ownHosts.length === 0 || facts.sender !== "" || facts.bounceNamesUs !== false) return undefined;
    return {
      reply: reply(550, "5.7.1", "Error: bounce for a message that did not pass through our hosts"),
      evidence: { own_hosts: settings.ownHosts.join(",") },
    };
  },
});
