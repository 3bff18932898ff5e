import assert from "node:assert/strict";
import { parseIP, parsePrefix } from "../../src/ip/address.ts";
import { Store } from "../../src/store/store.ts";
import { onCleanup, test } from "../harness.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { startServer } from "../helpers/server.ts";
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
  b.follow(50, { runtime: "test", listen: "-", startedAt: Date.now() });
  a.set("ban", { prefix: parsePrefix("2001:db8:5:6::/64")!, ttlMs: 60_000, check: "pregreet", reason: "PREGREET" }, Date.now());
  await a.flush();
  const deadline = Date.now() + 3000;
  while (!b.lookup(parseIP("2001:db8:5:6::77")!, Date.now()).ban && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(b.lookup(parseIP("2001:db8:5:6::77")!, Date.now()).ban?.node, "a");
  assert.deepEqual(errors, []);
}, { timeoutMs: 20_000 });

test("a node on sqld bans an early talker, and a second node on the same sqld refuses it", async () => {
  const sqld = await startSqld();
  const nodeA = await startServer({ MXSCREEN_DB_URL: sqld.url, MXSCREEN_NODE: "node-a", MXSCREEN_GREET_WAIT: "2s" });
  const nodeB = await startServer({ MXSCREEN_DB_URL: sqld.url, MXSCREEN_NODE: "node-b", MXSCREEN_GREET_WAIT: "2s" });
  const bot = await RawClient.open(nodeA.port, "127.0.0.81");
  await bot.until(/^220-/);
  bot.write("EHLO bot\r\n");
  await bot.waitClosed();
  await nodeA.waitForLine(/event=PREGREET client=127\.0\.0\.81:/);
  const deadline = Date.now() + 5000;
  let text = "";
  while (Date.now() < deadline) {
    const probe = await RawClient.open(nodeB.port, "127.0.0.81");
    await probe.until(/^(554|220-)/);
    text = probe.text;
    probe.close();
    if (text.startsWith("554")) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.match(text, /^554 5\.7\.1 /);
  await nodeB.waitForLine(/event=BANNED client=127\.0\.0\.81:\d+ ban=127\.0\.0\.81\/32 reason=PREGREET by=node-a/);
}, { timeoutMs: 30_000 });
