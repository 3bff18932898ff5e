import assert from "node:assert/strict";
import { parseIP, parsePrefix } from "../../src/ip/address.ts";
import { Store } from "../../src/store/store.ts";
import { onCleanup, test } from "../harness.ts";
import { startSqld } from "../helpers/sqld.ts";

test("two stores on one real sqld migrate once and see each other's bans", async () => {
  const sqld = await startSqld();
  const errors: Error[] = [];
  const [a, b] = await Promise.all([
    Store.open({ url: sqld.url, node: "a" }, (e) => errors.push(e)),
    Store.open({ url: sqld.url, node: "b" }, (e) => errors.push(e)),
  ]);
  onCleanup(async () => {
    await a.close();
    await b.close();
  });
  b.follow({ fastMs: 50, idleMs: 50 }, { runtime: "test", listen: "-", startedAt: Date.now() });
  a.set("ban", { prefix: parsePrefix("2001:db8:5:6::/64")!, ttlMs: 60_000, check: "pregreet", reason: "PREGREET" }, Date.now());
  await a.flush();
  const deadline = Date.now() + 3000;
  while (!b.lookup(parseIP("2001:db8:5:6::77")!, Date.now()).ban && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(b.lookup(parseIP("2001:db8:5:6::77")!, Date.now()).ban?.node, "a");
  assert.deepEqual(errors, []);
}, { timeoutMs: 20_000 });
