import assert from "node:assert/strict";
import { join } from "node:path";
import { runtimeName } from "../../src/net/runtime/which-runtime.ts";
import { test } from "../harness.ts";
import { cli } from "../helpers/cli.ts";
import { becomes, firstWords, guessRecipients, pregreet } from "../helpers/screen-probe.ts";
import { type RunningServer, startServer, tempDir } from "../helpers/server.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { startSqld } from "../helpers/sqld.ts";
import { startTcpDelayProxy } from "../helpers/tcp-delay-proxy.ts";

const here = runtimeName().split(" ")[0] as "deno" | "bun";
const other = here === "deno" ? "bun" : "deno";
const FLEET = { timeoutMs: 60_000 };

/**
 * These nodes follow at the fast pace even while idle: a change another node or the CLI made
 * reaches an idle node within MXSCREEN_FOLLOW_IDLE_INTERVAL otherwise (a nudge, issue 13 point 7,
 * is what makes that fast).
 */
const FAST = { MXSCREEN_FOLLOW_IDLE_INTERVAL: "250ms" };

test(`a ${here} node and a ${other} node on one sqld: a pregreet on one and a CLI ban are refused on both within a second`, async () => {
  const sqld = await startSqld();
  const a = await startServer({ ...FAST, MXSCREEN_DB_URL: sqld.url, MXSCREEN_NODE: `a-${here}`, MXSCREEN_GREET_WAIT: "3s" });
  const b = await startServer({ ...FAST, MXSCREEN_DB_URL: sqld.url, MXSCREEN_NODE: `b-${other}`, MXSCREEN_GREET_WAIT: "3s" }, {
    runtime: other,
  });
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

test(
  "sqld killed while a node bans: the node keeps screening, says so on /readyz and /metrics, and the ban reaches the other node once sqld is back",
  async () => {
    const sqld = await startSqld();
    const a = await startServer({ ...FAST, MXSCREEN_DB_URL: sqld.url, MXSCREEN_NODE: "a", MXSCREEN_GREET_WAIT: "3s" }, { admin: true });
    const b = await startServer({ ...FAST, MXSCREEN_DB_URL: sqld.url, MXSCREEN_NODE: "b", MXSCREEN_GREET_WAIT: "3s" }, { runtime: other });
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
  },
  FLEET,
);

test("an embedded-replica node reads locally, its bans reach the primary's nodes, and theirs reach it", async () => {
  const sqld = await startSqld();
  const dir = tempDir();
  const replica = await startServer({
    ...FAST,
    MXSCREEN_DB_URL: `file:${join(dir, "replica.db")}`,
    MXSCREEN_DB_SYNC_URL: sqld.url,
    MXSCREEN_NODE: "replica",
    MXSCREEN_GREET_WAIT: "3s",
  }, { dir });
  const primaryNode = await startServer({ ...FAST, MXSCREEN_DB_URL: sqld.url, MXSCREEN_NODE: "primary", MXSCREEN_GREET_WAIT: "3s" }, {
    runtime: other,
  });
  await pregreet(replica, "127.0.8.1");
  await becomes(primaryNode, "127.0.8.1", "554 ", 2000);
  await pregreet(primaryNode, "127.0.8.2");
  await becomes(replica, "127.0.8.2", "554 ", 2000);
  await replica.waitForLine(/event=BANNED client=127\.0\.8\.2:\d+ .*by=primary/);
}, FLEET);

test(
  "a sqld that requires a token: MXSCREEN_DB_AUTH_TOKEN gets in, and without it start-up stops with the URL and the reason",
  async () => {
    const sqld = await startSqld({ auth: true });
    const node = await startServer({ MXSCREEN_DB_URL: sqld.url, MXSCREEN_DB_AUTH_TOKEN: sqld.token!, MXSCREEN_GREET_WAIT: "3s" });
    await pregreet(node, "127.0.9.1");
    assert.equal(await firstWords(node, "127.0.9.1"), "554 ");
    await assert.rejects(
      startServer({ MXSCREEN_DB_URL: sqld.url }),
      (error: Error) =>
        /exited with 1 before it started/.test(error.message) &&
        new RegExp(`mxscreen: cannot open the store at ${sqld.url.replace(/\./g, "\\.")}: .*401`).test(error.message),
    );
  },
  FLEET,
);

test(
  `nudges: polling every 3 s, a ban made on a ${here} node is enforced on a ${other} node well before the poll, and one made through the ${other} node's API or with the CLI comes back as fast`,
  async () => {
    const sqld = await startSqld();
    const token = "fleet-token-0123456789";
    const env = { MXSCREEN_DB_URL: sqld.url, MXSCREEN_GREET_WAIT: "3s", MXSCREEN_FOLLOW_INTERVAL: "3s", MXSCREEN_ADMIN_TOKEN: token };
    const a = await startServer({ ...env, MXSCREEN_NODE: `a-${here}` }, { admin: true });
    const b = await startServer({ ...env, MXSCREEN_NODE: `b-${other}` }, { admin: true, runtime: other });
    // Each learns where the other's admin API answers from the nodes table, at a heartbeat (at
    // start, then every second poll here: 6 s).
    await new Promise((r) => setTimeout(r, 6_500));
    for (const n of [1, 2, 3]) {
      await pregreet(a, `127.0.8.${n}`);
      const took = await becomes(b, `127.0.8.${n}`, "554 ", 3_000);
      assert.ok(took < 700, `ban ${n} reached the ${other} node in ${took} ms, not by its 3 s poll`);
    }
    for (const n of [11, 12, 13]) {
      const added = await fetch(`${b.admin}/api/bans`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ address: `127.0.8.${n}`, reason: "api" }),
      });
      assert.equal(added.status, 201);
      await added.body?.cancel();
      const took = await becomes(a, `127.0.8.${n}`, "554 ", 3_000);
      assert.ok(took < 700, `API ban ${n} reached the ${here} node in ${took} ms`);
    }
    assert.equal(
      (await cli(sqld.url, ["ban", "add", "127.0.8.30", "--reason", "cli"], undefined, { MXSCREEN_ADMIN_TOKEN: token })).code,
      0,
    );
    for (const node of [a, b]) {
      const took = await becomes(node, "127.0.8.30", "554 ", 3_000);
      assert.ok(took < 700, `the CLI's ban reached a node in ${took} ms: the CLI nudges too`);
    }
    assert.ok(![...a.lines, ...b.lines].some((line) => /cannot nudge/.test(line)), "no nudge failed");
  },
  FLEET,
);

test("nudges: a node given another admin token is refused, says so once, and still gets the ban by polling", async () => {
  const sqld = await startSqld();
  const env = { MXSCREEN_DB_URL: sqld.url, MXSCREEN_GREET_WAIT: "3s", MXSCREEN_FOLLOW_INTERVAL: "1s" };
  const a = await startServer({ ...env, MXSCREEN_NODE: "a", MXSCREEN_ADMIN_TOKEN: "token-of-node-a-0123" }, { admin: true });
  const b = await startServer({ ...env, MXSCREEN_NODE: "b", MXSCREEN_ADMIN_TOKEN: "token-of-node-b-0123" }, {
    admin: true,
    runtime: other,
  });
  await new Promise((r) => setTimeout(r, 5_500));
  await pregreet(a, "127.0.8.21");
  await a.waitForLine(
    /level=warn msg="cannot nudge the node at http:\/\/127\.0\.0\.1:\d+ after a ban \(it answered 401 \(give every node the same MXSCREEN_ADMIN_TOKEN\)\); it still reads the ban at its next poll"/,
  );
  await becomes(b, "127.0.8.21", "554 ", 3_000);
  await pregreet(a, "127.0.8.22");
  await becomes(b, "127.0.8.22", "554 ", 3_000);
  assert.equal(a.lines.filter((line) => /cannot nudge/.test(line)).length, 1, "one warning per peer until it works again");
}, FLEET);

test(
  `fleet-wide counts: unknown recipients from one /24 tried at a ${here} node and then at a ${other} node add up there, and the ${other} node bans the connection that goes over`,
  async () => {
    const sqld = await startSqld();
    // No admin API here, so no nudge: the ban reaches the other node by polling, kept at the fast pace.
    const env = {
      ...FAST,
      MXSCREEN_DB_URL: sqld.url,
      MXSCREEN_GREET_WAIT: "300ms",
      MXSCREEN_ACCEPT_DOMAINS: "example.org",
      MXSCREEN_MAX_BAD_RCPT_PREFIX: "4",
    };
    const a = await startServer({ ...env, MXSCREEN_NODE: `a-${here}` });
    const b = await startServer({ ...env, MXSCREEN_NODE: `b-${other}` }, { runtime: other });
    await guessRecipients(a, "127.0.9.11");
    await a.waitForLine(/event="PASS NEW" client=127\.0\.9\.11:/);
    // Node a writes its counts with its heartbeat, node b reads them with its own: every 5 s each.
    await new Promise((r) => setTimeout(r, 10_500));
    await guessRecipients(b, "127.0.9.12");
    await b.waitForLine(
      /event=DICTIONARY client=127\.0\.9\.12:\d+ prefix=127\.0\.9\.0\/24 prefix_bad_recipients=6 domain=elsewhere\.example domain_bad_recipients=6 .*action=ban$/,
    );
    await becomes(a, "127.0.9.12", "554 ", 2_000);
  },
  FLEET,
);

test(
  `a CrowdSec-style feed pushes to the ${other} node's import API; the ${here} node enforces the new decisions and lifts the deleted ones`,
  async () => {
    const sqld = await startSqld();
    const token = "feed-token-0123456789";
    const env = { MXSCREEN_DB_URL: sqld.url, MXSCREEN_GREET_WAIT: "3s", MXSCREEN_ADMIN_TOKEN: token };
    const a = await startServer({ ...env, MXSCREEN_NODE: `a-${here}` }, { admin: true });
    const b = await startServer({ ...env, MXSCREEN_NODE: `b-${other}` }, { admin: true, runtime: other });
    const push = async (body: unknown) => {
      const response = await fetch(`${b.admin}/api/bans/import`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      assert.equal(response.status, 200);
      return await response.json();
    };
    const decision = (value: string, duration = "4h") => ({
      value,
      scope: value.includes("/") ? "Range" : "Ip",
      type: "ban",
      duration,
      scenario: "crowdsecurity/smtp-bf",
      origin: "crowdsec",
    });
    const first = await push({
      new: [decision("127.0.11.1"), decision("127.0.11.16/28"), { ...decision("127.0.11.2"), type: "captcha" }],
      deleted: [],
    });
    assert.deepEqual([first.added, first.refusedCount, first.refused[0]?.line], [2, 1, 3]);
    await becomes(a, "127.0.11.1", "554 ", 2_000);
    await becomes(a, "127.0.11.20", "554 ", 2_000);
    assert.equal(await firstWords(a, "127.0.11.2"), "220-", "a captcha decision is no ban");
    const second = await push({ new: [decision("127.0.11.1", "1h")], deleted: [decision("127.0.11.16/28"), decision("127.0.11.99")] });
    assert.deepEqual([second.added, second.present, second.removed, second.absent, second.written], [0, 1, 1, 1, true]);
    await becomes(a, "127.0.11.20", "220-", 2_000);
    const bans = await (await fetch(`${a.admin}/api/bans`, { headers: { authorization: `Bearer ${token}` } })).json();
    assert.deepEqual(bans.bans.map((entry: { prefix: string; reason: string; node: string }) => [entry.prefix, entry.reason, entry.node]), [
      ["127.0.11.1/32", "crowdsecurity/smtp-bf", `b-${other}`],
    ]);
  },
  FLEET,
);

test(
  `greylisting with sqld 300 ms of round trip away: a ${here} node and a ${other} node answer RCPT without waiting on it, and the retry through the other node passes`,
  async () => {
    const sqld = await startSqld();
    const far = await startTcpDelayProxy(sqld.port, 150);
    const env = {
      MXSCREEN_DB_URL: far.url,
      MXSCREEN_GREET_WAIT: "300ms",
      MXSCREEN_ACCEPT_DOMAINS: "example.org",
      MXSCREEN_GREYLIST: "true",
      MXSCREEN_GREYLIST_DELAY: "1s",
    };
    const a = await startServer({ ...env, MXSCREEN_NODE: `a-${here}` });
    const b = await startServer({ ...env, MXSCREEN_NODE: `b-${other}` }, { runtime: other });
    const rcpt = async (server: RunningServer, source: string, reply: RegExp) => {
      const c = await RawClient.greeted(server.port, source);
      await c.command("HELO client.example.net", /^250 /);
      await c.command("MAIL FROM:<a@example.net>", /^250 /);
      const started = performance.now();
      await c.command("RCPT TO:<b@example.org>", reply);
      const took = performance.now() - started;
      await c.command("QUIT", /^221 /);
      return took;
    };
    const first = await rcpt(a, "127.0.12.1", /^451 4\.7\.1 /);
    assert.ok(
      first < 150,
      `the ${here} node deferred the RCPT in ${Math.round(first)} ms, within less than one round trip to the database`,
    );
    // Node b reads node a's triplets every 5 s; the delay (1 s) has passed by then.
    await new Promise((r) => setTimeout(r, 6_000));
    const retry = await rcpt(b, "127.0.12.2", /^250 /);
    assert.ok(retry < 150, `the ${other} node passed the retry in ${Math.round(retry)} ms`);
  },
  FLEET,
);
