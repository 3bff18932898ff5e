// deno-fmt-ignore-file -- its html`` templates are the page's bytes, which deno fmt would re-indent and re-wrap
import type { StoreHealth } from "../store/store.ts";
import type { Explanation } from "../store/explain.ts";
import type { FleetStats } from "../store/stats.ts";
import { describeRate } from "../store/observe-estimate.ts";
import type { ObservedChecks } from "../store/observed-checks.ts";
import { durationText } from "../config/duration.ts";
import { ago, Html, html } from "./html.ts";
import type { Staleness } from "./stale.ts";
import type { VerdictMinute } from "../metrics/metrics.ts";

export interface DashboardData {
  readonly node: string;
  readonly now: number;
  readonly open: number;
  readonly totals: { verdicts: Record<string, number>; letThrough: Record<string, number> };
  readonly lastHour: readonly VerdictMinute[];
  readonly fleet: FleetStats;
  readonly store: StoreHealth;
  /** Set while the fleet's numbers are this node's memory, the database being away. */
  readonly stale?: Staleness;
}

const LISTS_FROM: Record<StoreHealth["listsFrom"], string> = {
  database: "",
  "replica-file": "lists from the embedded replica's file, not the primary",
  "local-copy": "lists from this node's local copy, not yet from the database",
  nothing: "no lists yet: no local copy and no database since start",
};

/** A line at the top of every page answered from memory: what is missing, and since when. */
function staleBanner(stale: Staleness | undefined, now: number): Html | string {
  if (!stale) return "";
  const since = stale.lastContact === null ? "not since this node started" : `last contact ${ago(Date.parse(stale.lastContact), now)}`;
  return html`<p class="bad" id="stale">Stale: answered from this node's memory (${stale.reason}; ${since}). Verdicts, offenders and nodes live in the database and are not shown.</p>`;
}

/** How the chart and the totals group verdict tags (kebab-case, as in the metrics). */
type Group = "passed" | "refused" | "let-through" | "other";
const GROUPS: readonly Group[] = ["passed", "let-through", "refused", "other"];
const GROUP_COLOURS: Record<Group, string> = { passed: "#2e7d32", "let-through": "#ef6c00", refused: "#c62828", other: "#9e9e9e" };

function groupOf(verdict: string): Group {
  if (["pass-new", "pass-old", "allowed"].includes(verdict)) return "passed";
  if (["hangup", "timeout", "shutdown", "error-limit"].includes(verdict)) return "other";
  return "refused";
}

/** Connections per group: a hit let through is counted as that, not under its verdict's group. */
function groupCounts(counts: { verdicts: Record<string, number>; letThrough: Record<string, number> }): Record<Group, number> {
  const out: Record<Group, number> = { passed: 0, refused: 0, "let-through": 0, other: 0 };
  for (const [verdict, n] of Object.entries(counts.verdicts)) out[groupOf(verdict)] += n - (counts.letThrough[verdict] ?? 0);
  for (const n of Object.values(counts.letThrough)) out["let-through"] += n;
  return out;
}

function chart(lastHour: DashboardData["lastHour"]): Html {
  const width = 720;
  const height = 160;
  const barWidth = width / lastHour.length;
  const perMinute = lastHour.map((m) => groupCounts(m));
  const max = Math.max(1, ...perMinute.map((groups) => GROUPS.reduce((sum, group) => sum + groups[group], 0)));
  const bars = lastHour.flatMap((m, i) => {
    let y = height;
    return GROUPS.map((group) => {
      const count = perMinute[i][group];
      const h = (count / max) * (height - 10);
      y -= h;
      return count === 0 ? html`` : html`<rect x="${(i * barWidth + 1).toFixed(1)}" y="${y.toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${GROUP_COLOURS[group]}"><title>${new Date(m.minute).toISOString().slice(11, 16)} UTC: ${count} ${group}</title></rect>`;
    });
  });
  return html`<svg class="chart" viewBox="0 0 ${width} ${height + 16}" role="img" aria-label="Connections per minute over the last hour">
    <line x1="0" y1="${height}" x2="${width}" y2="${height}" stroke="#bbb"/>
    ${bars}
    <text x="0" y="${height + 14}" font-size="11" fill="#666">60 min ago</text>
    <text x="${width}" y="${height + 14}" font-size="11" fill="#666" text-anchor="end">now (peak ${max}/min)</text>
  </svg>`;
}

const STYLE = html`<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; max-width: 1100px; }
  h1 { font-size: 1.4rem; margin: 0 0 .25rem; } h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
  .tiles { display: flex; gap: .75rem; flex-wrap: wrap; }
  .tile { border: 1px solid #ddd; border-radius: 6px; padding: .5rem .9rem; min-width: 8rem; }
  .tile b { display: block; font-size: 1.6rem; }
  .passed b { color: ${GROUP_COLOURS.passed}; } .refused b { color: ${GROUP_COLOURS.refused}; } .let-through b { color: ${GROUP_COLOURS["let-through"]}; }
  .bad { color: ${GROUP_COLOURS.refused}; font-weight: bold; } .good { color: ${GROUP_COLOURS.passed}; font-weight: bold; }
  table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #eee; }
  th { color: #555; font-weight: 600; } .chart { width: 100%; max-width: 720px; } .muted { color: #777; }
  .legend span { display: inline-block; margin-right: 1rem; } .legend i { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem; }
</style>`;

/** Each check in `ignore` or `observe`, and what enforcing it would cost, so an operator can switch it on evidence. */
function observedSection(o: ObservedChecks): Html {
  return html`<h2>What enforcing would cost (fleet, checks in ignore or observe)</h2>
<p class="muted">Clients hit from ${durationText(o.windowMs)} to ${durationText(o.retryWindowMs)} ago, by what they did next on any node: legitimate (DNSWL-listed, delivered after a 4xx, or a later clean pass), bot (banned by another check or DNSBL-listed, or no delivery within ${
    durationText(o.retryWindowMs)
  } of a 4xx), unknown (neither yet).</p>
<table id="observed"><tr><th>check</th><th>action here now</th><th>clients</th><th>hits</th><th>legitimate</th><th>bot</th><th>unknown</th><th>false positives if enforced</th></tr>
${o.checks.map((c) => html`<tr><td>${c.check}</td><td>${c.action ?? "?"}</td><td>${c.clients}</td><td>${c.hits}${c.sampled ? " (newest)" : ""}</td><td>${c.legitimate}</td><td>${c.bot}</td><td>${c.unknown}</td><td>${describeRate(c)}</td></tr>`)}
</table>
${o.checks.length === 0 ? html`<p class="muted">No check in ignore or observe had a hit in the window.</p>` : ""}`;
}

export function renderDashboard(d: DashboardData): string {
  const total = Object.values(d.totals.verdicts).reduce((a, n) => a + n, 0);
  const hour = d.lastHour.map((m) => groupCounts(m));
  const hourSum = (group: Group) => hour.reduce((a, groups) => a + groups[group], 0);
  const storeOk = d.store.reachable && d.store.length === 0;
  return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="10">
<title>mxscreen ${d.node}</title>${STYLE}</head><body>
<h1>mxscreen on ${d.node}</h1>
<div class="muted">${new Date(d.now).toISOString()} · refreshes every 10 s</div>
${staleBanner(d.stale, d.now)}
<h2>Now</h2>
<div class="tiles">
  <div class="tile" id="open"><b>${d.open}</b>open connections</div>
  <div class="tile passed" id="passed-hour"><b>${hourSum("passed")}</b>passed, last hour</div>
  <div class="tile refused" id="refused-hour"><b>${hourSum("refused")}</b>refused, last hour</div>
  <div class="tile let-through" id="let-through-hour"><b>${hourSum("let-through")}</b>hit but let through (ignore, observe), last hour</div>
  <div class="tile" id="total"><b>${total}</b>connections since start</div>
  <div class="tile" id="bans"><b>${d.fleet.lists.ban}</b>bans in force (fleet)</div>
  <div class="tile" id="store"><b class="${storeOk ? "good" : "bad"}">${d.store.reachable ? "reachable" : "unreachable"}</b>store · ${d.store.length} queued · contact ${d.store.lastContact === 0 ? "none since start" : ago(d.store.lastContact, d.now)}${
    LISTS_FROM[d.store.listsFrom] ? html` · ${LISTS_FROM[d.store.listsFrom]}` : ""
  }</div>
</div>
<h2>Connections per minute, last hour (this node)</h2>
${chart(d.lastHour)}
<div class="legend"><span><i style="background:${GROUP_COLOURS.passed}"></i>passed</span><span><i style="background:${GROUP_COLOURS["let-through"]}"></i>hit, let through</span><span><i style="background:${GROUP_COLOURS.refused}"></i>refused</span><span><i style="background:${GROUP_COLOURS.other}"></i>hung up, timed out</span></div>
<h2>Verdicts since start (this node)</h2>
<table id="verdicts"><tr><th>verdict</th><th>connections</th></tr>
${Object.entries(d.totals.verdicts).sort((a, b) => b[1] - a[1]).map(([v, n]) => html`<tr><td>${v}</td><td>${n}${d.totals.letThrough[v] ? ` (${d.totals.letThrough[v]} let through)` : ""}</td></tr>`)}
</table>
<h2>Top offenders, last hour (fleet)</h2>
<table id="offenders"><tr><th>client</th><th>verdicts</th><th>last</th><th></th></tr>
${d.fleet.topOffenders.map((o) => html`<tr><td>${o.ip}</td><td>${o.events}</td><td>${o.lastEvent} · ${ago(o.last, d.now)}</td><td><a href="/explain/${encodeURIComponent(o.ip)}">explain</a></td></tr>`)}
</table>
${d.fleet.topOffenders.length === 0 ? html`<p class="muted">None in the last hour.</p>` : ""}
${d.fleet.observed ? observedSection(d.fleet.observed) : ""}
<h2>Recent verdicts (fleet)</h2>
<table id="recent"><tr><th>when</th><th>node</th><th>client</th><th>verdict</th><th>action</th></tr>
${d.fleet.recent.map((r) => html`<tr><td>${ago(r.at, d.now)}</td><td>${r.node}</td><td><a href="/explain/${encodeURIComponent(r.ip)}">${r.ip}</a></td><td>${r.event}</td><td>${r.action}</td></tr>`)}
</table>
<h2>Fleet</h2>
<table id="nodes"><tr><th>node</th><th>runtime</th><th>listening</th><th>last contact</th></tr>
${d.fleet.nodes.map((n) => html`<tr><td>${n.name}</td><td>${n.runtime}</td><td>${n.listen}</td><td class="${d.now - n.lastSeen > 30_000 ? "bad" : ""}">${ago(n.lastSeen, d.now)}</td></tr>`)}
</table>
<p class="muted">Lists in force: ${d.fleet.lists.ban} bans, ${d.fleet.lists.pass} passes, ${d.fleet.lists.allow} allow entries. JSON: <a href="/api/stats">/api/stats</a> · <a href="/metrics">/metrics</a></p>
</body></html>`.text;
}

export function renderExplain(e: Explanation, now: number, standing: string, stale?: Staleness): string {
  return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>explain ${e.ip}</title>${STYLE}</head><body>
<h1>Why ${e.ip} is treated as it is</h1>
${staleBanner(stale, now)}
<p id="standing">Now: <b>${standing}</b> · <a href="/">dashboard</a> · <a href="/api/explain/${encodeURIComponent(e.ip)}">JSON</a></p>
<h2>Verdicts</h2>
<table id="events"><tr><th>when</th><th>node</th><th>port</th><th>verdict</th><th>check</th><th>action</th><th>evidence</th></tr>
${e.events.map((v) => html`<tr><td>${new Date(v.at).toISOString()} (${ago(v.at, now)})</td><td>${v.node}</td><td>${v.port}</td><td>${v.event}</td><td>${v.check ?? ""}</td><td>${v.action}</td><td><code>${JSON.stringify(v.evidence)}</code></td></tr>`)}
</table>
${e.events.length === 0 ? html`<p class="muted">No verdict recorded for this address.</p>` : ""}
<h2>Ban, pass and allow entries covering it</h2>
<table id="lists"><tr><th>when</th><th>list</th><th>prefix</th><th>change</th><th>expires</th><th>node</th><th>check</th><th>reason</th></tr>
${e.lists.map((l) => html`<tr><td>${new Date(l.at).toISOString()}</td><td>${l.kind}</td><td>${l.prefix}</td><td>${l.op}</td><td>${l.expiresAt === null ? "never" : new Date(l.expiresAt).toISOString()}</td><td>${l.node}</td><td>${l.check ?? ""}</td><td>${l.reason ?? ""}</td></tr>`)}
</table>
</body></html>`.text;
}
