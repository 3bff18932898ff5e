import assert from "node:assert/strict";
import { BadRecipientWindow } from "../../src/dictionary/bad-recipient-window.ts";
import { parseIP } from "../../src/ip/address.ts";
import { WindowedCounts } from "../../src/store/windowed-counts.ts";
import { test } from "../harness.ts";

function window(max: number, windowMs: number) {
  const counters = { perPrefix: new WindowedCounts(windowMs), perDomain: new WindowedCounts(windowMs) };
  return { window: new BadRecipientWindow({ max, windowMs }, counters), counters };
}

test("unknown recipients add up across connections of one /24 within the window, and age out of it", () => {
  const { window: w } = window(8, 60_000);
  assert.deepEqual(w.add(parseIP("192.0.2.1")!, 4, [], 0), { prefix: "192.0.2.0/24", count: 4, over: false });
  assert.deepEqual(w.add(parseIP("192.0.2.77")!, 4, [], 10_000), { prefix: "192.0.2.0/24", count: 8, over: false });
  assert.deepEqual(w.add(parseIP("192.0.2.9")!, 1, [], 20_000), { prefix: "192.0.2.0/24", count: 9, over: true });
  assert.equal(w.add(parseIP("198.51.100.1")!, 5, [], 20_000).count, 5, "another network counts apart");
  assert.deepEqual(
    w.add(parseIP("192.0.2.1")!, 1, [], 75_000),
    { prefix: "192.0.2.0/24", count: 2, over: false },
    "the first two aged out",
  );
  assert.equal(w.add(parseIP("2001:db8::1")!, 3, [], 0).prefix, "2001:db8::/64");
});

test("other nodes' counts for a network and a domain add to this node's, within the window only", () => {
  const { window: w, counters } = window(8, 60_000);
  counters.perPrefix.setOther("192.0.2.0/24", 0, "node-b", 5, 1_000);
  counters.perPrefix.setOther("192.0.2.0/24", 0, "node-b", 6, 1_000);
  counters.perDomain.setOther("example.org", 0, "node-c", 30, 1_000);
  const count = w.add(parseIP("192.0.2.1")!, 3, [["example.org", 2], ["example.net", 1]], 1_000);
  assert.deepEqual(
    count,
    { prefix: "192.0.2.0/24", count: 9, over: true, domain: { name: "example.org", count: 32 } },
    "node b's latest total replaced its earlier one",
  );
  assert.deepEqual(counters.perPrefix.takeChanged(), [{ key: "192.0.2.0/24", slot: 0, count: 3 }], "only this node's own count is written");
  assert.deepEqual(counters.perPrefix.takeChanged(), [], "and only once");
  assert.equal(counters.perPrefix.sum("192.0.2.0/24", 70_000), 0, "gone with the window");
  counters.perPrefix.setOther("192.0.2.0/24", 0, "node-b", 50, 70_000);
  assert.equal(counters.perPrefix.sum("192.0.2.0/24", 70_000), 0, "a late row for a slot out of the window does not count");
});

test("a flood of distinct networks keeps at most the cap of keys, the least recently counted going first", () => {
  const counts = new WindowedCounts(60_000, 3);
  for (const key of ["a", "b", "c"]) counts.add(key, 1, 0);
  counts.add("a", 1, 1);
  counts.add("d", 1, 2);
  assert.equal(counts.size, 3);
  assert.equal(counts.sum("b", 3), 0, "b went first");
  assert.equal(counts.sum("a", 3), 2);
});
