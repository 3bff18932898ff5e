import { parseDuration } from "../config/duration.ts";
import { setting } from "../config/setting.ts";
import { parseScore } from "../config/values.ts";
import type { DnsblAnswer } from "../dns/types.ts";
import { parseIPv4 } from "../ip/address.ts";
import { reply } from "../checks/reply.ts";
import { defineCheck } from "../checks/define-check.ts";
import { parseDnsblReplyMap, shownZone } from "./dnsbl-reply-map.ts";
import { type DnsblSite, parseDnsblSites } from "./dnsbl-sites.ts";

/** How one zone's answer counts: listed, not listed, or an answer that means trouble rather than a listing. */
export type ZoneVerdict = { readonly kind: "listed" } | { readonly kind: "clean" } | {
  readonly kind: "unhealthy";
  readonly reason: string;
};

/**
 * 127.255.255.x is how lists say "you may not query me" (Spamhaus: public resolver, over
 * quota); anything outside 127/8, or outside the list's documented range, is not a listing
 * either. Counting those has rejected whole mail streams for postscreen and mailcow operators.
 */
export function zoneVerdict(answer: DnsblAnswer["answer"], site: DnsblSite): ZoneVerdict {
  if (answer.status === "nxdomain") return { kind: "clean" };
  if (answer.status === "error") return { kind: "unhealthy", reason: `lookup failed: ${answer.reason}` };
  let listed = false;
  for (const record of answer.records) {
    const ip = parseIPv4(record);
    if (ip === null || ip.value >>> 24 !== 127) return { kind: "unhealthy", reason: `answer ${record} is outside 127.0.0.0/8` };
    if (ip.value >>> 8 === 0x7fffff) return { kind: "unhealthy", reason: `answer ${record} is an error code` };
    const octets = record.split(".").map(Number);
    const inRange = site.filter === undefined ||
      site.filter.every((ranges, i) => ranges.some(([low, high]) => octets[i] >= low && octets[i] <= high));
    if (!inRange) return { kind: "unhealthy", reason: `answer ${record} is outside the documented range` };
    listed = true;
  }
  return listed ? { kind: "listed" } : { kind: "clean" };
}

export interface DnsblScore {
  readonly score: number;
  /** Zones that counted, with their weights: `zen.example*3`. */
  readonly listed: readonly string[];
  readonly unhealthy: readonly string[];
}

/** postscreen's weighted sum over the configured zones; a site listed twice (two filters on one zone) counts twice. */
export function dnsblScore(answers: readonly DnsblAnswer[], sites: readonly DnsblSite[]): DnsblScore {
  let score = 0;
  const listed: string[] = [];
  const unhealthy: string[] = [];
  for (const site of sites) {
    const answer = answers.find((a) => a.zone === site.zone);
    if (answer === undefined) continue;
    const verdict = zoneVerdict(answer.answer, site);
    if (verdict.kind === "listed") {
      score += site.weight;
      listed.push(`${site.zone}*${site.weight}`);
    } else if (verdict.kind === "unhealthy") {
      unhealthy.push(site.zone);
    }
  }
  return { score, listed, unhealthy };
}

/**
 * The client's weighted score, and whether it is at or below MXSCREEN_DNSWL_THRESHOLD (a DNSWL
 * listing), which skips every other check of the session; undefined when no zone is configured.
 */
export function dnswlStanding(
  answers: readonly DnsblAnswer[],
  settings: { readonly dnsbl: readonly DnsblSite[]; readonly dnswlThreshold: number },
): { readonly score: number; readonly allowlisted: boolean } | undefined {
  if (settings.dnsbl.length === 0) return undefined;
  const { score } = dnsblScore(answers, settings.dnsbl);
  return { score, allowlisted: score <= settings.dnswlThreshold };
}

/**
 * DNSBL/DNSWL weighted score at or above MXSCREEN_DNSBL_THRESHOLD (postscreen_dnsbl_sites):
 * every RCPT but postmaster@/abuse@ is refused. Lookups start at accept, during the greet
 * wait; a zone that has not answered by the end of it does not count.
 */
export const dnsbl = defineCheck({
  id: "dnsbl",
  tag: "DNSBL",
  stage: "connect",
  consequence: "delay",
  defaultAction: "enforce",
  settings: {
    dnsbl: setting("MXSCREEN_DNSBL", "", parseDnsblSites),
    dnsblThreshold: setting("MXSCREEN_DNSBL_THRESHOLD", "1", parseScore),
    /** Read by the session: at or below it, no other check runs. */
    dnswlThreshold: setting("MXSCREEN_DNSWL_THRESHOLD", "-1", parseScore),
    /** Read by the gate: a passed client whose last DNSBL verdict is older is looked up again (postscreen_dnsbl_ttl). */
    dnsblTtlMs: setting("MXSCREEN_DNSBL_TTL", "1h", parseDuration),
    /** What the reply names instead of a zone; the log and the event rows keep the zone itself. */
    dnsblReplyMap: setting("MXSCREEN_DNSBL_REPLY_MAP", "", parseDnsblReplyMap),
  },
  evaluate(facts, settings) {
    if (settings.dnsbl.length === 0) return undefined;
    const { score, listed, unhealthy } = dnsblScore(facts.dnsbl, settings.dnsbl);
    if (score < settings.dnsblThreshold || listed.length === 0) return undefined;
    const zones = [...new Set(listed.map((entry) => shownZone(settings.dnsblReplyMap, entry.replace(/\*-?\d+$/, ""))))].join(", ");
    return {
      reply: reply(550, "5.7.1", `Service unavailable; client [${facts.client.address}] blocked using ${zones}`),
      evidence: {
        score,
        listed: listed.join(","),
        unhealthy: unhealthy.length > 0 ? unhealthy.join(",") : undefined,
        answers: facts.dnsbl.map(({ zone, answer }) => `${zone}=${answer.status === "ok" ? answer.records.join("+") : answer.status}`).join(
          ",",
        ),
      },
    };
  },
});
