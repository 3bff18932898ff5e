import assert from "node:assert/strict";
import { FleetCounters } from "../../src/store/fleet-counters.ts";
import { Store } from "../../src/store/store.ts";
import { onCleanup, test } from "../harness.ts";
import { eventually } from "../helpers/eventually.ts";
import { startSqld } from "../helpers/sqld.ts";

test(
  "fleet counters through sqld: node b's sum includes node a's counts once a wrote and b read them, and each node writes only its own",
  async () => {
    const sqld = await startSqld();
    const errors: Error[] = [];
    const a = await Store.open({ url: sqld.url, node: "a" }, (e) => errors.push(e));
    const b = await Store.open({ url: sqld.url, node: "b" }, (e) => errors.push(e));
    const onA = new FleetCounters(a, (e) => errors.push(e));
    const onB = new FleetCounters(b, (e) => errors.push(e));
    const [countA, countB] = [onA.counter("bad-rcpt-prefix", 3_600_000), onB.counter("bad-rcpt-prefix", 3_600_000)];
    await onA.start();
    await onB.start();
    onCleanup(async () => {
      await Promise.all([onA.stop(), onB.stop()]);
      await a.close(0);
      await b.close(0);
    });
    const now = Date.now();
    assert.equal(countA.add("192.0.2.0/24", 3, now), 3);
    assert.equal(countB.add("192.0.2.0/24", 2, now), 2, "no command waits to hear from the other nodes");
    await eventually("node b's sum has node a's 3", () => countB.sum("192.0.2.0/24", Date.now()) === 5, 12_000);
    await eventually("node a's sum has node b's 2", () => countA.sum("192.0.2.0/24", Date.now()) === 5, 12_000);
    const rows = await a.db.selectFrom("counters").select(["node", "key", "count"]).orderBy("node").execute();
    assert.deepEqual(rows.map((r) => [r.node, r.key, r.count]), [["a", "192.0.2.0/24", 3], ["b", "192.0.2.0/24", 2]]);
    assert.throws(() => onA.counter("bad-rcpt-prefix", 60_000), /already counted over 3600000 ms/);
    assert.deepEqual(errors, []);
  },
  { timeoutMs: 40_000 },
);
