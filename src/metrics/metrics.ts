/**
 * Prometheus metrics, text format 0.0.4, and a per-minute timeline of verdicts for the
 * dashboard. Names follow Prometheus conventions: `_total` counters, `_seconds` histograms.
 */

import { CHECKS } from "../checks/registry.ts";

type Labels = Record<string, string>;

/** One minute of the timeline: connections by verdict, and of them those let through (`verdict`'s `letThrough`). */
export interface VerdictMinute {
  readonly minute: number;
  readonly verdicts: Record<string, number>;
  readonly letThrough: Record<string, number>;
}

/** Verdicts the gate and the session end make besides the checks' own tags (conclude.ts). */
const GATE_VERDICTS = [
  "PASS NEW",
  "PASS OLD",
  "ALLOWED",
  "BANNED",
  "HANGUP",
  "PROXY",
  "TIMEOUT",
  "ERROR-LIMIT",
  "SHUTDOWN",
  "TLS-FAILED",
  "WORKER-FAILED",
  "LOCAL-ERROR",
];

/** A log tag as the metrics' label, as conclude.ts writes it: `PASS NEW` → `pass-new`. */
function verdictLabel(tag: string): string {
  return tag.toLowerCase().replace(/ /g, "-");
}

interface Histogram {
  counts: number[];
  sum: number;
  count: number;
}

interface Family {
  readonly help: string;
  readonly type: "counter" | "gauge" | "histogram";
  readonly values: Map<string, number>;
  readonly buckets: readonly number[];
  readonly histograms: Map<string, Histogram>;
  readonly collect?: () => number | readonly (readonly [Labels, number])[];
}

const SESSION_BUCKETS = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300];
const LOOKUP_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5];
const TIMELINE_MINUTES = 60;

const LABEL_SPECIAL = /[\\"\n]/;

function labelValue(value: string): string {
  return LABEL_SPECIAL.test(value) ? value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") : value;
}

/** Label names in order, values escaped; runs per increment, so a single label (most counters) skips the sort and the escaping when nothing needs it. */
function labelKey(labels: Labels): string {
  const names = Object.keys(labels);
  if (names.length === 1) return `${names[0]}="${labelValue(labels[names[0]])}"`;
  return names.sort((a, b) => a.localeCompare(b)).map((name) => `${name}="${labelValue(labels[name])}"`).join(",");
}

export class Metrics {
  private readonly families = new Map<string, Family>();
  /** Verdict counts per minute: minute start (ms) → verdict → count, the last hour only. */
  private readonly timeline = new Map<number, { verdicts: Map<string, number>; letThrough: Map<string, number> }>();

  constructor() {
    this.define("mxscreen_connections_total", "counter", "Connections concluded, by verdict (the log tag, kebab-case).");
    this.define(
      "mxscreen_connections_let_through_total",
      "counter",
      "Of those, the connections whose verdict was a hit only logged (the check's action ignore, or observe mode): the client went on.",
    );
    this.define("mxscreen_check_hits_total", "counter", "Findings, by check id and the action taken.");
    this.define("mxscreen_messages_total", "counter", "Messages, by result: delivered or failed.");
    this.define("mxscreen_session_seconds", "histogram", "Connection lifetime from accept to conclusion.", SESSION_BUCKETS);
    this.define("mxscreen_dns_lookup_seconds", "histogram", "DNS lookup latency, by kind.", LOOKUP_BUCKETS);
    this.define("mxscreen_dnsbl_lookup_seconds", "histogram", "DNSBL/DNSWL lookup latency, by zone.", LOOKUP_BUCKETS);
    this.define(
      "mxscreen_harvest_changes_total",
      "counter",
      "Recipient domains entering (state=enter) and leaving (state=leave) the harvest state.",
    );
    this.define("mxscreen_tarpit_sessions_total", "counter", "Sessions given a place in the tarpit (their replies slowed for their hits).");
    this.define("mxscreen_tarpit_delay_seconds_total", "counter", "Delay the tarpit added before replies' final lines.");
    this.define(
      "mxscreen_tarpit_skipped_total",
      "counter",
      "Replies the tarpit did not slow, by reason: budget (MXSCREEN_TARPIT_SHARE full) or stress.",
    );
    // Present from zero, so rate() and alerts see a series before the first event.
    for (const tag of new Set([...GATE_VERDICTS, ...CHECKS.map((check) => check.tag)])) {
      this.inc("mxscreen_connections_total", { verdict: verdictLabel(tag) }, 0);
    }
    for (const check of CHECKS) this.inc("mxscreen_check_hits_total", { check: check.id, action: check.defaultAction }, 0);
    for (const result of ["delivered", "failed"]) this.inc("mxscreen_messages_total", { result }, 0);
    for (const state of ["enter", "leave"]) this.inc("mxscreen_harvest_changes_total", { state }, 0);
    this.inc("mxscreen_tarpit_sessions_total", {}, 0);
    this.inc("mxscreen_tarpit_delay_seconds_total", {}, 0);
    for (const reason of ["budget", "stress"]) this.inc("mxscreen_tarpit_skipped_total", { reason }, 0);
  }

  /** A gauge read when scraped, so it is never stale: one value, or one per label set. */
  gauge(name: string, help: string, collect: () => number | readonly (readonly [Labels, number])[]): void {
    this.families.set(name, { help, type: "gauge", values: new Map(), buckets: [], histograms: new Map(), collect });
  }

  /** A counter read when scraped, from a count kept where it happens (one value, or one per label set). */
  counter(name: string, help: string, collect: () => number | readonly (readonly [Labels, number])[]): void {
    this.families.set(name, { help, type: "counter", values: new Map(), buckets: [], histograms: new Map(), collect });
  }

  inc(name: string, labels: Labels = {}, by = 1): void {
    const family = this.family(name);
    const key = labelKey(labels);
    family.values.set(key, (family.values.get(key) ?? 0) + by);
  }

  observe(name: string, value: number, labels: Labels = {}): void {
    const family = this.family(name);
    const key = labelKey(labels);
    let h = family.histograms.get(key);
    if (!h) family.histograms.set(key, h = { counts: family.buckets.map(() => 0), sum: 0, count: 0 });
    for (let i = 0; i < family.buckets.length; i++) if (value <= family.buckets[i]) h.counts[i]++;
    h.sum += value;
    h.count++;
  }

  /**
   * Counts one concluded connection: the counter, the lifetime histogram and the timeline.
   * `letThrough`: a check hit it but only logged (its action `ignore`, or observe mode), so the
   * client went on as if passed; counted apart so that observe mode does not look like refusals.
   */
  verdict(verdict: string, seconds: number, now: number, letThrough = false): void {
    this.inc("mxscreen_connections_total", { verdict });
    if (letThrough) this.inc("mxscreen_connections_let_through_total", { verdict });
    this.observe("mxscreen_session_seconds", seconds);
    const minute = Math.floor(now / 60_000) * 60_000;
    let bucket = this.timeline.get(minute);
    if (!bucket) {
      this.timeline.set(minute, bucket = { verdicts: new Map(), letThrough: new Map() });
      for (const old of this.timeline.keys()) if (old <= minute - TIMELINE_MINUTES * 60_000) this.timeline.delete(old);
    }
    bucket.verdicts.set(verdict, (bucket.verdicts.get(verdict) ?? 0) + 1);
    if (letThrough) bucket.letThrough.set(verdict, (bucket.letThrough.get(verdict) ?? 0) + 1);
  }

  /** Verdict counts per minute for the last hour, every minute present (zeros included), oldest first. */
  lastHour(now: number): VerdictMinute[] {
    const end = Math.floor(now / 60_000) * 60_000;
    return Array.from({ length: TIMELINE_MINUTES }, (_, i) => {
      const minute = end - (TIMELINE_MINUTES - 1 - i) * 60_000;
      const bucket = this.timeline.get(minute);
      return { minute, verdicts: Object.fromEntries(bucket?.verdicts ?? []), letThrough: Object.fromEntries(bucket?.letThrough ?? []) };
    });
  }

  /** Connections since start, by verdict (those that happened); `letThrough` those of them let through. */
  verdictTotals(): { verdicts: Record<string, number>; letThrough: Record<string, number> } {
    const byVerdict = (name: string) => {
      const out: Record<string, number> = {};
      for (const [key, value] of this.family(name).values) if (value > 0) out[/verdict="([^"]*)"/.exec(key)![1]] = value;
      return out;
    };
    return { verdicts: byVerdict("mxscreen_connections_total"), letThrough: byVerdict("mxscreen_connections_let_through_total") };
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, family] of this.families) {
      lines.push(`# HELP ${name} ${family.help}`, `# TYPE ${name} ${family.type}`);
      const collected = family.collect?.();
      if (typeof collected === "number") lines.push(`${name} ${collected}`);
      else {
        for (const [labels, value] of collected ?? []) {
          const key = labelKey(labels);
          lines.push(`${name}${key ? `{${key}}` : ""} ${value}`);
        }
      }
      for (const [key, value] of family.values) lines.push(`${name}${key ? `{${key}}` : ""} ${value}`);
      for (const [key, h] of family.histograms) {
        const prefix = key ? `${key},` : "";
        family.buckets.forEach((bound, i) => lines.push(`${name}_bucket{${prefix}le="${bound}"} ${h.counts[i]}`));
        lines.push(`${name}_bucket{${prefix}le="+Inf"} ${h.count}`);
        lines.push(`${name}_sum${key ? `{${key}}` : ""} ${h.sum}`, `${name}_count${key ? `{${key}}` : ""} ${h.count}`);
      }
    }
    return lines.join("\n") + "\n";
  }

  private define(name: string, type: "counter" | "histogram", help: string, buckets: readonly number[] = []): void {
    this.families.set(name, { help, type, values: new Map(), buckets, histograms: new Map() });
  }

  private family(name: string): Family {
    const family = this.families.get(name);
    if (!family) throw new Error(`metric ${name} is not registered`);
    return family;
  }
}
