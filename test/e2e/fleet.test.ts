import assert from "node:assert/strict";
import { join } from "node:path";
import { runtimeName } from "../../src/net/runtime.ts";
import { test } from "../harness.ts";
import { cli } from "../helpers/cli.ts";
import { becomes, firstWords, pregreet } from "../helpers/screen-probe.ts";
import { startServer, tempDir } from "../helpers/server.ts";
import { startSqld } from "../helpers/sqld.ts";

const here = runtimeName().split(" ")[0] as "deno" | "bun";
const other = here === "deno" ? "bun" : "deno";
const FLEET = { timeoutMs: 60_000 };

test(`a ${here} node and a ${other} node on one sqld: a pregreet on one and a CLI ban are refused on both within a second`, async () => {
  const sqld = await startSqld();
  const a = await startServer({ MXSCREEN_DB_URL: sqld.url, MXSCREEN_NODE: `a-${here}`, MXSCREEN_GREET_WAIT: "3s" });
  const b = await startServer({ MXSCREEN_DB_URL: sqld.url, MXSCREEN_NODE: `b-${other}`, MXSCREEN_GREET_WAIT: "3s" }, { runtime: other });
  await pregreet(a, "127.0.6.1");
  const took = await becomes(b, "127.0.6.1", "554 ", 2000);
  assert.ok(took < 1000, `propagated in ${took} ms`);
  await b.waitForLine(new RegExp(`event=BANNED client=127\\.0\\.6\\.1:\\d+ ban=127\\.0\\.6\\.1/32 reason=PREGREET by=a-${here}`));

  assert.equal((await cli(sqld.url, ["ban", "add", "127.0.6.128/25", "--reason", "cli"])).code, 0);
  await becomes(a, "127.0.6.200", "554 ", 1500);
  await becomes(b, "127.0.6.200", "554 ", 1500);
  assert.equal((await cli(sqld.url, ["ban", "rm", "127.0.6.128/25"])).code, 0);
  await becomes(a, "127.0.6.201", "220-", 1500);
  await becomes(b, "127.0.6.201", "220-", 1500);
}, FLEET);

test("sqld killed while a node bans: the node keeps screening, says so on /readyz and /metrics, and the ban reaches the other node once sqld is back", async () => {
  const sqld = await startSqld();
  const a = await startServer({ MXSCREEN_DB_URL: sqld.url, MXSCREEN_NODE: "a", MXSCREEN_GREET_WAIT: "3s" }, { admin: true });
  const b = await startServer({ MXSCREEN_DB_URL: sqld.url, MXSCREEN_NODE: "b", MXSCREEN_GREET_WAIT: "3s" }, { runtime: other });
  await sqld.kill();
  await pregreet(a, "127.0.7.1");
  assert.equal(await firstWords(a, "127.0.7.1"), "554 ", "node A enforces its own ban while the store is away");
  await a.waitForLine(/level=warn msg="store write failed, keeping \d+ writes queued in .*store-queue\.jsonl and retrying/);
  const ready = await fetch(`${a.admin}/readyz`);
  assert.equal(ready.status, 200, "degraded is still ready: the node screens (e2e/local-first)");
  const body = await ready.json();
  assert.equal(body.status, "degraded");
  assert.match(body.reasons[0], /^store unreachable: /);
  const metrics = await (await fetch(`${a.admin}/metrics`)).text();
  assert.match(metrics, /^mxscreen_store_reachable 0$/m);
  assert.match(metrics, /^mxscreen_store_queue_length [1-9]\d*$/m);
  assert.equal(await firstWords(b, "127.0.7.1"), "220-", "node B has not heard of it");

  await sqld.restart();
  await becomes(b, "127.0.7.1", "554 ", 10_000);
  await a.waitForLine(/msg="store reachable again: writing \d+ queued writes"/);
  // The follower tries again once a second while the database is away: ready within a few.
  let after: { status: string } = { status: "" };
  for (let i = 0; i < 50 && after.status !== "ready"; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 100));
    const response = await fetch(`${a.admin}/readyz`);
    assert.equal(response.status, 200);
    after = await response.json();
  }
  assert.equal(after.status, "ready");
}, FLEET);

test("an embedded-replica node reads locally, its bans reach the primary's nodes, and theirs reach it", async () => {
  const sqld = await startSqld();
  const dir = tempDir();
  const replica = await startServer({
    MXSCREEN_DB_URL: `file:${join(dir, "replica.db")}`,
    MXSCREEN_DB_SYNC_URL: sqld.url,
    MXSCREEN_NODE: "replica",
    MXSCREEN_GREET_WAIT: "3s",
  }, { dir });
  const primaryNode = await startServer({ MXSCREEN_DB_URL: sqld.url, MXSCREEN_NODE: "primary", MXSCREEN_GREET_WAIT: "3s" }, { runtime: other });
  await pregreet(replica, "127.0.8.1");
  await becomes(primaryNode, "127.0.8.1", "554 ", 2000);
  await pregreet(primaryNode, "127.0.8.2");
  await becomes(replica, "127.0.8.2", "554 ", 2000);
  await replica.waitForLine(/event=BANNED client=127\.0\.8\.2:\d+ .*by=primary/);
}, FLEET);

test("a sqld that requires a token: MXSCREEN_DB_AUTH_TOKEN gets in, and without it start-up stops with the URL and the reason", async () => {
  const sqld = await startSqld({ auth: true });
  const node = await startServer({ MXSCREEN_DB_URL: sqld.url, MXSCREEN_DB_AUTH_TOKEN: sqld.token!, MXSCREEN_GREET_WAIT: "3s" });
  await pregreet(node, "127.0.9.1");
  assert.equal(await firstWords(node, "127.0.9.1"), "554 ");
  await assert.rejects(
    startServer({ MXSCREEN_DB_URL: sqld.url }),
    (error: Error) => /exited with 1 before it started/.test(error.message) &&
      new RegExp(`mxscreen: cannot open the store at ${sqld.url.replace(/\./g, "\\.")}: .*401`).test(error.message),
  );
}, FLEET);
