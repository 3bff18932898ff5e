import assert from "node:assert/strict";
import { Metrics } from "../../src/metrics/metrics.ts";
import { test } from "../harness.ts";

test("Prometheus text: counters with labels, a histogram with cumulative buckets, gauges read when scraped", () => {
  const m = new Metrics();
  let open = 3;
  m.gauge("mxscreen_open_connections", "Client connections open now.", () => open);
  m.verdict("pregreet", 0.2, 0);
  m.verdict("pregreet", 7, 0);
  m.verdict("pass-new", 6.5, 0);
  m.verdict("helo-syntax", 1, 0, true);
  m.inc("mxscreen_check_hits_total", { check: "pregreet", action: "ban" });
  open = 5;
  const text = m.render();
  assert.match(text, /^# HELP mxscreen_connections_total .+\n# TYPE mxscreen_connections_total counter\n/m);
  assert.match(text, /^mxscreen_connections_total\{verdict="pregreet"\} 2$/m);
  assert.match(text, /^mxscreen_connections_total\{verdict="pass-new"\} 1$/m);
  assert.match(text, /^mxscreen_connections_total\{verdict="helo-syntax"\} 1$/m);
  assert.match(text, /^mxscreen_connections_let_through_total\{verdict="helo-syntax"\} 1$/m);
  assert.doesNotMatch(text, /^mxscreen_connections_let_through_total\{verdict="pregreet"\}/m, "a refusal is not counted as let through");
  assert.match(text, /^mxscreen_check_hits_total\{action="ban",check="pregreet"\} 1$/m);
  assert.match(text, /^mxscreen_session_seconds_bucket\{le="0.5"\} 1$/m);
  assert.match(text, /^mxscreen_session_seconds_bucket\{le="10"\} 4$/m);
  assert.match(text, /^mxscreen_session_seconds_bucket\{le="\+Inf"\} 4$/m);
  assert.match(text, /^mxscreen_session_seconds_sum 14\.7$/m);
  assert.match(text, /^mxscreen_session_seconds_count 4$/m);
  assert.match(text, /^mxscreen_open_connections 5$/m);
  assert.deepEqual(m.verdictTotals(), { verdicts: { pregreet: 2, "pass-new": 1, "helo-syntax": 1 }, letThrough: { "helo-syntax": 1 } });
});

test("the timeline keeps per-minute verdicts for the last hour only", () => {
  const m = new Metrics();
  const t0 = Date.UTC(2026, 10, 23, 10, 0, 30);
  m.verdict("pregreet", 0, t0);
  m.verdict("pass-new", 0, t0 + 60_000);
  m.verdict("helo-syntax", 0, t0 + 60_000, true);
  const hour = m.lastHour(t0 + 60_000);
  assert.equal(hour.length, 60);
  assert.deepEqual(hour[58].verdicts, { pregreet: 1 });
  assert.deepEqual(hour[59].verdicts, { "pass-new": 1, "helo-syntax": 1 });
  assert.deepEqual([hour[58].letThrough, hour[59].letThrough], [{}, { "helo-syntax": 1 }]);
  assert.deepEqual(
    m.lastHour(t0 + 60 * 60_000).flatMap((h) => Object.keys(h.verdicts)),
    ["pass-new", "helo-syntax"],
    "the minute an hour back has gone",
  );
});
