import assert from "node:assert/strict";
import { BadRecipientWindow } from "../../src/dictionary/bad-recipient-window.ts";
import { parseIP } from "../../src/ip/address.ts";
import { test } from "../harness.ts";

test("unknown recipients add up across connections of one /24 within the window, and age out of it", () => {
  const window = new BadRecipientWindow({ max: 8, windowMs: 60_000 });
  assert.deepEqual(window.add(parseIP("192.0.2.1")!, 4, 0), { prefix: "192.0.2.0/24", count: 4, over: false });
  assert.deepEqual(window.add(parseIP("192.0.2.77")!, 4, 10_000), { prefix: "192.0.2.0/24", count: 8, over: false });
  assert.deepEqual(window.add(parseIP("192.0.2.9")!, 1, 20_000), { prefix: "192.0.2.0/24", count: 9, over: true });
  assert.equal(window.add(parseIP("198.51.100.1")!, 5, 20_000).count, 5, "another network counts apart");
  assert.deepEqual(window.add(parseIP("192.0.2.1")!, 1, 75_000), { prefix: "192.0.2.0/24", count: 2, over: false }, "the first two aged out");
  assert.equal(window.add(parseIP("2001:db8::1")!, 3, 0).prefix, "2001:db8::/64");
});
