import assert from "node:assert/strict";
import { join } from "node:path";
import { GreylistStore, nextTriplet } from "../../src/greylist/greylist-store.ts";
import { registerFleetMetrics } from "../../src/admin/fleet-metrics.ts";
import { Metrics } from "../../src/metrics/metrics.ts";
import { FleetCounters } from "../../src/store/fleet-counters.ts";
import { Store } from "../../src/store/store.ts";
import { onCleanup, test } from "../harness.ts";
import { eventually } from "../helpers/eventually.ts";
import { tempDir } from "../helpers/server.ts";
import { startSqld } from "../helpers/sqld.ts";

const CONFIG = { delayMs: 300_000, windowMs: 4 * 3_600_000, passTtlMs: 35 * 86_400_000 };
const T = "192.0.2.0/24 <a@example.net> <b@example.org>";

test("greylist triplets: deferred when new and when retried too soon, passed after the delay, remembered, forgotten when not retried", () => {
  const first = nextTriplet(undefined, T, 0, CONFIG);
  assert.equal(first.verdict, "defer");
  const soon = nextTriplet(first.row, T, 60_000, CONFIG);
  assert.equal(soon.verdict, "defer");
  assert.equal(soon.row, first.row, "a retry too soon changes nothing");
  const retry = nextTriplet(soon.row, T, 300_000, CONFIG);
  assert.deepEqual(retry, {
    verdict: "pass",
    row: { triplet: T, first_seen: 0, passed_at: 300_000, expires_at: 300_000 + CONFIG.passTtlMs },
  });
  assert.equal(nextTriplet(retry.row, T, 10 * 86_400_000, CONFIG).verdict, "pass", "remembered for the pass TTL");
  const late = nextTriplet(first.row, T, CONFIG.windowMs, CONFIG);
  assert.deepEqual(late, {
    verdict: "defer",
    row: { triplet: T, first_seen: CONFIG.windowMs, passed_at: null, expires_at: 2 * CONFIG.windowMs },
  }, "not retried within the window: new again");
});

test("greylist triplets live in the shared database and every node's memory: a retry through a second node passes without asking the database", async () => {
  const url = `file:${join(tempDir(), "g.db")}`;
  const errors: Error[] = [];
  const a = await Store.open({ url, node: "a" }, (e) => errors.push(e));
  const b = await Store.open({ url, node: "b" }, (e) => errors.push(e));
  onCleanup(async () => {
    await a.close();
    await b.close();
  });
  const config = { delayMs: 1000, windowMs: 600_000, passTtlMs: 600_000 };
  const onA = await GreylistStore.open(a, config, (e) => errors.push(e));
  const onB = await GreylistStore.open(b, config, (e) => errors.push(e));
  onCleanup(() => Promise.all([onA.stop(), onB.stop()]));
  const now = Date.now();
  assert.equal(onA.consult(T, now), "defer");
  assert.equal(await a.flush(5_000), true);
  await eventually("node b holds the triplet node a saw (it reads them every 5 s)", () => onB.size === 1, 8_000);
  assert.equal(onB.consult(T, now + 500), "defer", "too soon, wherever it retries");
  assert.equal(onB.consult(T, now + 1_000), "pass");
  assert.equal(await b.flush(5_000), true);
  assert.equal(onA.consult(T, now + 2_000), "pass", "node a passes its retry too: its own triplet is past the delay");
  assert.equal(onA.consult("198.51.100.0/24 <a@example.net> <b@example.org>", now + 2_000), "defer", "another network");
  assert.deepEqual(errors, []);
});

test("a lazy greylist (greylisting only for a harvest) reads nothing until its first consult, then holds the other nodes' triplets", async () => {
  const url = `file:${join(tempDir(), "g.db")}`;
  const errors: Error[] = [];
  const a = await Store.open({ url, node: "a" }, (e) => errors.push(e));
  const b = await Store.open({ url, node: "b" }, (e) => errors.push(e));
  onCleanup(async () => {
    await a.close();
    await b.close();
  });
  const onA = await GreylistStore.open(a, CONFIG, (e) => errors.push(e));
  const now = Date.now();
  onA.consult(T, now);
  assert.equal(await a.flush(5_000), true);
  const lazy = GreylistStore.lazy(b, CONFIG, (e) => errors.push(e));
  onCleanup(() => Promise.all([onA.stop(), lazy.stop()]));
  assert.equal(lazy.size, 0, "nothing read at start, where open() would have read node a's triplet");
  assert.equal(lazy.consult("198.51.100.0/24 <a@example.net> <b@example.org>", now), "defer");
  await eventually("the first consult starts following", () => lazy.size === 2, 2_000);
  assert.deepEqual(errors, []);
});

test(
  "while sqld is away, triplets are decided from memory (a retry after the delay passes) and reach the database when sqld is back",
  async () => {
    const sqld = await startSqld();
    const errors: Error[] = [];
    const store = await Store.open({ url: sqld.url, node: "a", queueFile: join(tempDir(), "queue.jsonl") }, (e) => errors.push(e));
    onCleanup(() => store.close(0));
    const greylist = await GreylistStore.open(store, { delayMs: 1000, windowMs: 60_000, passTtlMs: 600_000 }, (e) => errors.push(e));
    onCleanup(() => greylist.stop());
    await sqld.kill();
    const now = Date.now();
    const started = performance.now();
    assert.equal(greylist.consult(T, now), "defer");
    assert.equal(greylist.consult(T, now + 1_000), "pass");
    assert.ok(performance.now() - started < 50, "no consult waits for the database");
    assert.equal(store.health().length, 2, "the sighting and the pass wait in the queue");
    await sqld.restart();
    assert.equal(await store.flush(15_000), true);
    const rows = await store.db.selectFrom("greylist").selectAll().execute();
    assert.deepEqual(rows.map((r) => [r.triplet, r.node, r.passed_at]), [[T, "a", now + 1_000]]);
  },
  { timeoutMs: 30_000 },
);

test("at most MXSCREEN_GREYLIST_MAX_TRIPLETS triplets are held: the least recently changed are forgotten first, counted on /metrics with the fleet counters", async () => {
  const store = await Store.open({ url: `file:${join(tempDir(), "cap.db")}`, node: "a" }, () => {});
  onCleanup(() => store.close());
  const config = { delayMs: 1000, windowMs: 600_000, passTtlMs: 600_000, maxTriplets: 1000 };
  const greylist = await GreylistStore.open(store, config, () => {});
  onCleanup(() => greylist.stop());
  const counters = new FleetCounters(store, () => {});
  counters.counter("bad-rcpt-prefix", 3_600_000).add("192.0.2.0/24", 2, Date.now());
  const now = Date.now();
  const triplet = (i: number) => `192.0.2.0/24 <s${i}@example.net> <r@example.org>`;
  for (let i = 0; i < 1000; i++) assert.equal(greylist.consult(triplet(i), now), "defer");
  assert.equal(greylist.consult(triplet(0), now + 1_000), "pass", "the first one retried, and so changed last");
  for (let i = 1000; i < 1300; i++) greylist.consult(triplet(i), now + 2_000);
  assert.equal(greylist.size, 1000);
  assert.equal(greylist.evicted, 300);
  assert.equal(greylist.consult(triplet(0), now + 3_000), "pass", "kept: it changed after the 300 forgotten");
  assert.equal(greylist.consult(triplet(1), now + 3_000), "defer", "forgotten here, so deferred again as new");
  assert.equal(greylist.consult(triplet(1299), now + 3_000), "pass", "the newest are held");
  const metrics = new Metrics();
  registerFleetMetrics(metrics, counters, greylist);
  const text = metrics.render();
  assert.match(text, /^# TYPE mxscreen_greylist_evicted_total counter\nmxscreen_greylist_evicted_total 301$/m);
  assert.match(text, /^mxscreen_greylist_triplets 1000$/m);
  assert.match(text, /^mxscreen_fleet_count_keys\{counter="bad-rcpt-prefix"\} 1$/m);
  assert.match(text, /^mxscreen_fleet_count_window_seconds\{counter="bad-rcpt-prefix"\} 3600$/m);
  assert.match(text, /^mxscreen_fleet_count_evicted_total\{counter="bad-rcpt-prefix"\} 0$/m);
  assert.doesNotMatch(text, /^mxscreen_fleet_counts_sync_age_seconds \d/m, "no age before the first exchange");
  await counters.start();
  assert.match(metrics.render(), /^mxscreen_fleet_counts_sync_age_seconds 0(\.\d+)?$/m);
  await counters.stop();
});
