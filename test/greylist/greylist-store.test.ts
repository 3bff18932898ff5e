import assert from "node:assert/strict";
import { join } from "node:path";
import { GreylistStore, nextTriplet } from "../../src/greylist/greylist-store.ts";
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
  assert.deepEqual(retry, { verdict: "pass", row: { triplet: T, first_seen: 0, passed_at: 300_000, expires_at: 300_000 + CONFIG.passTtlMs } });
  assert.equal(nextTriplet(retry.row, T, 10 * 86_400_000, CONFIG).verdict, "pass", "remembered for the pass TTL");
  const late = nextTriplet(first.row, T, CONFIG.windowMs, CONFIG);
  assert.deepEqual(late, { verdict: "defer", row: { triplet: T, first_seen: CONFIG.windowMs, passed_at: null, expires_at: 2 * CONFIG.windowMs } }, "not retried within the window: new again");
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

test("while sqld is away, triplets are decided from memory (a retry after the delay passes) and reach the database when sqld is back", async () => {
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
}, { timeoutMs: 30_000 });
