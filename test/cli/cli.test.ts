import assert from "node:assert/strict";
import { runtimeName } from "../../src/net/runtime.ts";
import { test } from "../harness.ts";
import { cli } from "../helpers/cli.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { type RunningServer, startServer } from "../helpers/server.ts";

const runtime = runtimeName().split(" ")[0];



async function greeting(server: RunningServer, source: string): Promise<string> {
  const c = await RawClient.open(server.port, source);
  await c.until(/^(554|220)/);
  c.close();
  return c.text.slice(0, 4);
}

test(`the CLI on ${runtime} bans, lists, explains and lifts on the store of a running node, which follows within a second`, async () => {
  const server = await startServer({ MXSCREEN_GREET_WAIT: "300ms" });
  const added = await cli(server.dbUrl, ["ban", "add", "127.0.5.0/24", "--ttl", "3h", "--reason", "seen in spam run"]);
  assert.equal(added.code, 0, added.stderr);
  assert.match(added.stdout, /^banned 127\.0\.5\.0\/24 until \d{4}-\d\d-\d\dT/);
  const started = Date.now();
  while ((await greeting(server, "127.0.5.20")) !== "554 " && Date.now() - started < 3000) await new Promise((r) => setTimeout(r, 100));
  assert.ok(Date.now() - started < 1500, `the node refused the banned client after ${Date.now() - started} ms`);
  await server.waitForLine(/event=BANNED client=127\.0\.5\.20:\d+ ban=127\.0\.5\.0\/24 reason="seen in spam run" by=cli/);

  const table = await cli(server.dbUrl, ["ban", "ls"]);
  assert.match(table.stdout, /^prefix\s+expires\s+node\s+check\s+reason\s+since\n127\.0\.5\.0\/24\s+\S+\s+cli\s+manual\s+seen in spam run\s+\S+\n$/);
  const json = await cli(server.dbUrl, ["ban", "ls", "--json"]);
  assert.deepEqual(JSON.parse(json.stdout).map((r: { prefix: string }) => r.prefix), ["127.0.5.0/24"]);

  const why = await cli(server.dbUrl, ["explain", "127.0.5.20", "--json"]);
  const explained = JSON.parse(why.stdout);
  assert.equal(explained.events[0].event, "BANNED");
  assert.equal(explained.lists[0].reason, "seen in spam run");
  const stats = JSON.parse((await cli(server.dbUrl, ["stats", "--json"])).stdout);
  assert.equal(stats.lists.ban, 1);
  assert.equal(stats.events.BANNED, 1);

  const removed = await cli(server.dbUrl, ["ban", "rm", "127.0.5.0/24"]);
  assert.equal(removed.code, 0, removed.stderr);
  const lifted = Date.now();
  while ((await greeting(server, "127.0.5.21")) !== "220-" && Date.now() - lifted < 3000) await new Promise((r) => setTimeout(r, 100));
  assert.ok(Date.now() - lifted < 1500, "the ban stopped applying");
  assert.equal((await cli(server.dbUrl, ["ban", "ls"])).stdout, "(none)\n");

  const allowed = await cli(server.dbUrl, ["allow", "add", "127.0.5.30"]);
  assert.match(allowed.stdout, /^allowed 127\.0\.5\.30\/32 until removed/);
  assert.match((await cli(server.dbUrl, ["allow", "ls"])).stdout, /127\.0\.5\.30\/32\s+never/);
  assert.equal((await cli(server.dbUrl, ["migrate"])).stdout, "up to date\n");
}, { timeoutMs: 60_000 });

test("the CLI answers bad input (absurd TTLs, unconfirmed wide prefixes too) with one clear line and exit code 2, and an unknown command with the usage", async () => {
  const server = await startServer();
  for (const [args, message] of [
    [["ban", "add", "not-an-ip"], /^mxscreen: ban add: address: "not-an-ip" is not an IP address or CIDR prefix\n$/],
    [["ban", "add", "192.0.2.1", "--ttl", "soon"], /^mxscreen: ban add: ttl: "soon" is not a duration/],
    [["ban", "add", "192.0.2.1", "--ttl"], /^mxscreen: --ttl needs a value\n$/],
    [["explain", "nowhere"], /^mxscreen: explain: "nowhere" is not an IP address\n$/],
    [["allow", "rm"], /^mxscreen: allow rm: address: "" is not an IP address or CIDR prefix\n$/],
    [["ban", "add", "192.0.2.1", "--ttl", "100000000d"], /^mxscreen: ban add: ttl: "100000000d" is longer than 36500d \(100 years\), the longest allowed; use never for no end\n$/],
    [["ban", "add", "0.0.0.0/0"], /^mxscreen: ban add: address: 0\.0\.0\.0\/0 is wider than a \/8 and covers a large part of the Internet; if you mean it, confirm with --force\n$/],
    [["allow", "add", "::/0"], /^mxscreen: allow add: address: ::\/0 is wider than a \/16 .*confirm with --force\n$/],
  ] as const) {
    const result = await cli(server.dbUrl, [...args]);
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, message);
    assert.equal(result.stdout, "");
  }
  const forced = await cli(server.dbUrl, ["ban", "add", "0.0.0.0/0", "--ttl", "1m", "--force"]);
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stdout, /^banned 0\.0\.0\.0\/0 until /);
  const longest = await cli(server.dbUrl, ["ban", "add", "192.0.2.1", "--ttl", "36500d"]);
  assert.equal(longest.code, 0, longest.stderr);
  assert.equal((await cli(server.dbUrl, ["explain", "192.0.2.1"])).code, 0);
  const unknown = await cli(server.dbUrl, ["unban", "192.0.2.1"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^mxscreen: unknown command "unban"\n\nusage: mxscreen COMMAND/);
}, { timeoutMs: 60_000 });
