import assert from "node:assert/strict";
import { runtimeName } from "../../src/net/runtime/which-runtime.ts";
import { test } from "../harness.ts";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, run } from "../helpers/cli.ts";
import { eventually } from "../helpers/eventually.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { ROOT, type RunningServer, startServer, tempDir } from "../helpers/server.ts";

const runtime = runtimeName().split(" ")[0];

async function greeting(server: RunningServer, source: string): Promise<string> {
  const c = await RawClient.open(server.port, source);
  await c.until(/^(554|220)/);
  c.close();
  return c.text.slice(0, 4);
}

async function becomes(server: RunningServer, source: string, expected: string): Promise<void> {
  await eventually(`${source} gets ${JSON.stringify(expected)}`, async () => (await greeting(server, source)) === expected, 3_000);
}

test(`the CLI on ${runtime} bans, lists, explains and lifts on the store of a running node, which follows within a second`, async () => {
  // Following at the fast pace even while idle: an idle node reads the CLI's changes within
  // MXSCREEN_FOLLOW_IDLE_INTERVAL otherwise.
  const server = await startServer({ MXSCREEN_GREET_WAIT: "300ms", MXSCREEN_FOLLOW_IDLE_INTERVAL: "250ms" });
  const added = await cli(server.dbUrl, ["ban", "add", "127.0.5.0/24", "--ttl", "3h", "--reason", "seen in spam run"]);
  assert.equal(added.code, 0, added.stderr);
  assert.match(added.stdout, /^banned 127\.0\.5\.0\/24 until \d{4}-\d\d-\d\dT/);
  const started = Date.now();
  while ((await greeting(server, "127.0.5.20")) !== "554 " && Date.now() - started < 3000) await new Promise((r) => setTimeout(r, 100));
  assert.ok(Date.now() - started < 1500, `the node refused the banned client after ${Date.now() - started} ms`);
  await server.waitForLine(/event=BANNED client=127\.0\.5\.20:\d+ ban=127\.0\.5\.0\/24 reason="seen in spam run" by=cli/);

  const table = await cli(server.dbUrl, ["ban", "ls"]);
  assert.match(
    table.stdout,
    /^prefix\s+expires\s+node\s+check\s+reason\s+since\n127\.0\.5\.0\/24\s+\S+\s+cli\s+manual\s+seen in spam run\s+\S+\n$/,
  );
  const json = await cli(server.dbUrl, ["ban", "ls", "--json"]);
  assert.deepEqual(JSON.parse(json.stdout).map((r: { prefix: string }) => r.prefix), ["127.0.5.0/24"]);

  const why = await cli(server.dbUrl, ["explain", "127.0.5.20", "--json"]);
  const explained = JSON.parse(why.stdout);
  assert.equal(explained.events[0].event, "BANNED");
  assert.equal(explained.lists[0].reason, "seen in spam run");
  const stats = JSON.parse((await cli(server.dbUrl, ["stats", "--json"])).stdout);
  assert.equal(stats.lists.ban, 1);
  // One BANNED per refused connection, and one more when the ban landed while a connection was open (ended, 421).
  assert.equal(stats.events.BANNED, server.lines.filter((line) => /event=BANNED /.test(line)).length);
  assert.ok(stats.events.BANNED >= 1);

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

test(
  "the CLI answers bad input (absurd TTLs, unconfirmed wide prefixes too) with one clear line and exit code 2, and an unknown command with the usage",
  async () => {
    const server = await startServer();
    for (
      const [args, message] of [
        [["ban", "add", "not-an-ip"], /^mxscreen: ban add: address: "not-an-ip" is not an IP address or CIDR prefix\n$/],
        [["ban", "add", "192.0.2.1", "--ttl", "soon"], /^mxscreen: ban add: ttl: "soon" is not a duration/],
        [["ban", "add", "192.0.2.1", "--ttl"], /^mxscreen: --ttl needs a value\n$/],
        [["explain", "nowhere"], /^mxscreen: explain: "nowhere" is not an IP address\n$/],
        [["allow", "rm"], /^mxscreen: allow rm: address: "" is not an IP address or CIDR prefix\n$/],
        [
          ["ban", "add", "192.0.2.1", "--ttl", "100000000d"],
          /^mxscreen: ban add: ttl: "100000000d" is longer than 36500d \(100 years\), the longest allowed; use never for no end\n$/,
        ],
        [
          ["ban", "add", "0.0.0.0/0"],
          /^mxscreen: ban add: address: 0\.0\.0\.0\/0 is wider than a \/8 and covers a large part of the Internet; if you mean it, confirm with --force\n$/,
        ],
        [["allow", "add", "::/0"], /^mxscreen: allow add: address: ::\/0 is wider than a \/16 .*confirm with --force\n$/],
      ] as const
    ) {
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
  },
  { timeoutMs: 60_000 },
);

test(
  "the CLI's contract: --version, help per command, strict options, exit 1 when nothing was removed, ISO entries in --json",
  async () => {
    const server = await startServer();
    const version = await cli(server.dbUrl, ["--version"]);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^mxscreen \d+\.\d+\.\d+ \((deno|bun) [\d.]+\)\n$/);
    for (const args of [["help", "ban", "add"], ["ban", "add", "--help"]]) {
      const help = await cli(server.dbUrl, args);
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, /^usage: mxscreen ban add IP\|CIDR \[--ttl 1d\|never\] \[--reason TEXT\] \[--force\]\n/);
      assert.match(help.stdout, /--server/);
    }
    const strict = await cli(server.dbUrl, ["ban", "ls", "--ttl", "1d"]);
    assert.equal(strict.code, 2, "an option the command does not take is refused, not ignored");
    assert.match(strict.stderr, /^mxscreen: ban ls: unknown option --ttl\n\nusage: mxscreen ban ls/);
    const extra = await cli(server.dbUrl, ["ban", "rm", "192.0.2.1", "192.0.2.2"]);
    assert.equal(extra.code, 2);
    assert.match(extra.stderr, /^mxscreen: ban rm: unexpected "192\.0\.2\.2"/);

    const added = JSON.parse((await cli(server.dbUrl, ["ban", "add", "192.0.2.0/24", "--ttl", "1h", "--reason", "r", "--json"])).stdout);
    const listed = JSON.parse((await cli(server.dbUrl, ["ban", "ls", "--json"])).stdout);
    assert.deepEqual(listed, [added], "the entry added is the entry listed, in one shape");
    assert.deepEqual(Object.keys(added).sort(), ["check", "createdAt", "expiresAt", "kind", "node", "prefix", "reason"]);
    assert.equal(Date.parse(added.expiresAt) - Date.parse(added.createdAt), 3_600_000);
    const explained = JSON.parse((await cli(server.dbUrl, ["explain", "192.0.2.9", "--json"])).stdout);
    const { op: _op, evidence: _evidence, ...change } = explained.lists[0];
    assert.deepEqual(change, added);

    assert.equal((await cli(server.dbUrl, ["ban", "rm", "192.0.2.0/24"])).code, 0);
    const none = await cli(server.dbUrl, ["ban", "rm", "192.0.2.0/24"]);
    assert.equal(none.code, 1);
    assert.equal(none.stderr, "mxscreen: ban rm: 192.0.2.0/24 is not on the ban list: nothing was removed (see mxscreen ban ls)\n");
  },
  { timeoutMs: 60_000 },
);

test("remote mode: --server and the admin token do what the store does, with no database credentials on this side", async () => {
  const token = "remote-admin-token-0123456789";
  const server = await startServer({ MXSCREEN_ADMIN_TOKEN: token }, { admin: true });
  // A database this side cannot reach: remote mode must not need it.
  const nowhere = "http://127.0.0.1:9";
  const remote = (args: string[], env: Record<string, string> = { MXSCREEN_ADMIN_TOKEN: token }) =>
    cli(nowhere, [...args, "--server", server.admin], undefined, env);
  const added = await remote(["ban", "add", "127.0.6.0/24", "--ttl", "2h", "--reason", "remote", "--json"]);
  assert.equal(added.code, 0, added.stderr);
  const entry = JSON.parse(added.stdout);
  assert.equal(entry.node, "node-a", "the node behind the API made it");
  const refused = await RawClient.open(server.port, "127.0.6.5");
  await refused.waitClosed();
  assert.match(refused.text, /^554 /);
  assert.deepEqual(JSON.parse((await remote(["ban", "ls", "--json"])).stdout), [entry]);
  assert.deepEqual(JSON.parse((await cli(server.dbUrl, ["ban", "ls", "--json"])).stdout), [entry], "the same shape as the local CLI's");
  const why = JSON.parse((await remote(["explain", "127.0.6.5", "--json"])).stdout);
  assert.equal(why.events[0].event, "BANNED");
  assert.equal(JSON.parse((await remote(["stats", "--json"])).stdout).lists.ban, 1);
  const wrong = await cli(nowhere, ["ban", "ls", "--server", server.admin, "--token", "not-the-token-at-all"]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /refused: unauthorized: wrong token; pass the node's MXSCREEN_ADMIN_TOKEN/);
  const bad = await remote(["ban", "add", "0.0.0.0/0"]);
  assert.equal(bad.code, 2, "the API's 400 is bad input here too");
  assert.match(bad.stderr, /confirm with "force": true|--force/);
  assert.equal((await remote(["ban", "rm", "127.0.6.0/24"])).code, 0);
  const gone = await remote(["ban", "rm", "127.0.6.0/24"]);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /is not on the ban list: nothing was removed/);
  assert.equal((await remote(["migrate"])).code, 2, "migrate needs the store itself");
}, { timeoutMs: 60_000 });

test(
  "mxscreen config prints the settings in effect like postconf -n, secrets masked, and refuses a bad value as the server does",
  async () => {
    const env = {
      MXSCREEN_ADMIN_TOKEN: "a-very-secret-admin-token",
      MXSCREEN_DB_AUTH_TOKEN: "eyJhbGciOi.secret",
      MXSCREEN_GREET_WAIT: "3s",
      MXSCREEN_LOG: "postfix",
      MXSCREEN_UPSTREAM: "smtp://127.0.0.1:10025",
    };
    const shown = await cli("libsql://user:hunter2@db.example", ["config"], undefined, env);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(
      shown.stdout,
      [
        "MXSCREEN_ADMIN_TOKEN = ********",
        "MXSCREEN_DB_AUTH_TOKEN = ********",
        "MXSCREEN_DB_URL = libsql://user:********@db.example",
        "MXSCREEN_GREET_WAIT = 3s",
        "MXSCREEN_LOG = postfix",
        "MXSCREEN_NODE = cli",
        "MXSCREEN_UPSTREAM = smtp://127.0.0.1:10025",
        "",
      ].join("\n"),
    );
    assert.doesNotMatch(shown.stdout + shown.stderr, /secret|hunter2/);
    const all = await cli("file:x.db", ["config", "--all"]);
    assert.match(all.stdout, /^MXSCREEN_BAN_TTL = \(default\)$/m);
    const bad = await cli("file:x.db", ["config"], undefined, { MXSCREEN_GREET_WAIT: "6" });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^mxscreen: MXSCREEN_GREET_WAIT="6" is not valid/);
  },
  { timeoutMs: 30_000 },
);

test(
  `ban import on ${runtime}: a file (Postfix cidr lines included) and stdin, counts at the end with refused lines by number, the node enforcing the entries; the same through --server`,
  async () => {
    const token = "import-admin-token-0123456789";
    const server = await startServer({ MXSCREEN_ADMIN_TOKEN: token }, { admin: true });
    const dir = tempDir();
    const file = join(dir, "postscreen_access.cidr");
    writeFileSync(
      file,
      [
        "# imported from postscreen",
        "127.0.9.1 scanner",
        "127.0.9.16/28",
        "127.0.9.32/28 reject",
        "127.0.9.64/28 permit",
        "0.0.0.0/0 reject",
        "127.0.9.129/25 reject",
        "",
      ].join("\n"),
    );
    const first = await cli(server.dbUrl, ["ban", "import", file, "--ttl", "2h"]);
    assert.equal(first.code, 1, "a line was refused");
    assert.equal(
      first.stdout,
      [
        "ban import: 4 added (3 bans, 1 allow entries), 0 already present, 2 refused",
        '  line 6: "0.0.0.0/0": address: 0.0.0.0/0 is wider than a /8 and covers a large part of the Internet; if you mean it, confirm with --force',
        '  line 7: "127.0.9.129/25 reject": 127.0.9.129/25 has host bits set beyond its prefix length (Postfix skips such a line too): write 127.0.9.128/25',
        "",
      ].join("\n"),
    );
    assert.equal(first.stderr, "", "no progress line when stderr is not a terminal");
    for (const source of ["127.0.9.1", "127.0.9.20", "127.0.9.40"]) await becomes(server, source, "554 ");
    assert.equal(await greeting(server, "127.0.9.70"), "220 ", "the permit line is an allow entry: greeted at once");
    const bans = JSON.parse((await cli(server.dbUrl, ["ban", "ls", "--json"])).stdout);
    assert.deepEqual(bans.map((b: { prefix: string; reason: string | null }) => [b.prefix, b.reason]).sort(), [
      ["127.0.9.1/32", "scanner"],
      ["127.0.9.16/28", null],
      ["127.0.9.32/28", null],
    ]);

    const again = await run(
      "/bin/sh",
      [
        "-c",
        `exec node ${join(ROOT, "src/cli/launch.mjs")} --runtime ${runtime} src/cli/mxscreen.ts ban import - --ttl 1h --json < "${file}"`,
      ],
      dir,
      { MXSCREEN_DB_URL: server.dbUrl },
    );
    assert.equal(again.code, 1, again.stderr);
    const report = JSON.parse(again.stdout);
    assert.deepEqual([report.added, report.present, report.refusedCount, report.refused.map((r: { line: number }) => r.line)], [0, 4, 2, [
      6,
      7,
    ]], "present already for longer than 1h: left alone");

    const remoteFile = join(dir, "feed.txt");
    writeFileSync(remoteFile, "127.0.10.1 feed\n127.0.10.2\n127.0.10.1 twice\nnot-an-address\n");
    const remote = await cli(
      "http://127.0.0.1:9",
      ["ban", "import", remoteFile, "--server", server.admin, "--reason", "remote feed"],
      undefined,
      { MXSCREEN_ADMIN_TOKEN: token },
    );
    assert.equal(remote.code, 1, remote.stderr);
    assert.equal(
      remote.stdout,
      'ban import: 2 added, 1 already present, 1 refused\n  line 4: "not-an-address": address: "not-an-address" is not an IP address or CIDR prefix\n',
    );
    await becomes(server, "127.0.10.2", "554 ");
  },
  { timeoutMs: 60_000 },
);
