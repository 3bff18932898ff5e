import assert from "node:assert/strict";
import { TarpitBudget } from "../../src/gate/tarpit-budget.ts";
import { Metrics } from "../../src/metrics/metrics.ts";
import { test } from "../harness.ts";

test("tarpit budget: at most N sessions are slowed at once; a session keeps its place until released; under stress nothing is slowed and places are given up", () => {
  const metrics = new Metrics();
  let stressed = false;
  const budget = new TarpitBudget(2, () => stressed, metrics);
  const [a, b, c] = [{}, {}, {}];
  assert.equal(budget.grant(a, 1000), 1000);
  assert.equal(budget.grant(b, 2000), 2000);
  assert.equal(budget.grant(c, 1000), 0, "full");
  assert.equal(budget.grant(a, 3000), 3000, "a holder keeps its place");
  assert.equal(budget.grant(c, 0), 0);
  budget.release(a);
  assert.equal(budget.grant(c, 1000), 1000, "a place freed is taken");
  stressed = true;
  assert.equal(budget.grant(b, 1000), 0, "under stress");
  stressed = false;
  assert.equal(budget.grant(a, 1000), 1000, "b gave up its place under stress");
  const text = metrics.render();
  assert.match(text, /^mxscreen_tarpit_sessions_total 4$/m);
  assert.match(text, /^mxscreen_tarpit_delay_seconds_total 8$/m);
  assert.match(text, /^mxscreen_tarpit_skipped_total\{reason="budget"\} 1$/m);
  assert.match(text, /^mxscreen_tarpit_skipped_total\{reason="stress"\} 1$/m);
  assert.match(text, /^mxscreen_tarpit_sessions 2$/m);
});
