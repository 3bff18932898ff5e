import assert from "node:assert/strict";
import { join } from "node:path";
import { GreylistStore, nextTriplet } from "../../src/greylist/greylist-store.ts";
import { Store } from "../../src/store/store.ts";
import { onCleanup, test } from "../harness.ts";
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

test("greylist triplets live in the shared database: a retry through a second store passes", async () => {
  const url = `file:${join(tempDir(), "g.db")}`;
  const errors: Error[] = [];
  const a = await Store.open({ url, node: "a" }, (e) => errors.push(e));
  const b = await Store.open({ url, node: "b" }, (e) => errors.push(e));
  onCleanup(async () => {
    await a.close();
    await b.close();
  });
  const config = { delayMs: 1000, windowMs: 60_000, passTtlMs: 600_000 };
  const onA = new GreylistStore(a, config, (e) => errors.push(e));
  const onB = new GreylistStore(b, config, (e) => errors.push(e));
  assert.equal(await onA.consult(T, 10_000), "defer");
  assert.equal(await onB.consult(T, 10_500), "defer");
  assert.equal(await onB.consult(T, 11_000), "pass");
  assert.equal(await onA.consult(T, 12_000), "pass");
  assert.equal(await onA.consult("198.51.100.0/24 <a@example.net> <b@example.org>", 12_000), "defer", "another network");
  assert.deepEqual(errors, []);
});

test("a triplet first seen while sqld is away passes, and its sighting reaches the database when sqld is back", async () => {
  const sqld = await startSqld();
  const errors: Error[] = [];
  const store = await Store.open({ url: sqld.url, node: "a", queueFile: join(tempDir(), "queue.jsonl") }, (e) => errors.push(e));
  onCleanup(() => store.close(0));
  const greylist = new GreylistStore(store, { delayMs: 1000, windowMs: 60_000, passTtlMs: 600_000 }, (e) => errors.push(e));
  await sqld.kill();
  assert.equal(await greylist.consult(T, Date.now()), "pass", "an unreachable database never holds mail up");
  assert.match(errors[0].message, /^greylist lookup failed, the triplet passes: /);
  assert.equal(store.health().length, 1, "the sighting waits in the queue");
  await sqld.restart();
  assert.equal(await store.flush(15_000), true);
  const rows = await store.db.selectFrom("greylist").selectAll().execute();
  assert.deepEqual(rows.map((r) => [r.triplet, r.node, r.passed_at]), [[T, "a", null]]);
}, { timeoutMs: 30_000 });
