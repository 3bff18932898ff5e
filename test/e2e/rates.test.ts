import assert from "node:assert/strict";
import { runtimeName } from "../../src/net/runtime/which-runtime.ts";
import { test } from "../harness.ts";
import { type RunningServer, startServer } from "../helpers/server.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { startSqld } from "../helpers/sqld.ts";

const here = runtimeName().split(" ")[0] as "deno" | "bun";
const other = here === "deno" ? "bun" : "deno";
const ENV = { MXSCREEN_GREET_WAIT: "300ms", MXSCREEN_ACCEPT_DOMAINS: "example.org" };

/** The first reply a new connection from `source` gets: the greeting's first line, or a refusal. */
async function firstReply(server: RunningServer, source: string): Promise<string> {
  const c = await RawClient.open(server.port, source);
  const text = await c.until(/^(220[ -]|[45]\d\d )[^\r]*\r\n/, 3_000);
  c.close();
  return text.split("\r\n")[0];
}

/** A session from `source` that sends one message per entry, with that many recipients; returns every reply to MAIL and RCPT. */
async function send(server: RunningServer, source: string, messages: number[]): Promise<string[]> {
  const c = await RawClient.greeted(server.port, source);
  await c.command("HELO client.example.net", /^250 /);
  const replies: string[] = [];
  for (const recipients of messages) {
    const mail = await c.command("MAIL FROM:<a@example.net>", /^[245]\d\d /m);
    replies.push(mail.trim());
    if (!mail.startsWith("250")) continue;
    let accepted = 0;
    for (let i = 1; i <= recipients; i++) {
      const rcpt = await c.command(`RCPT TO:<r${i}@example.org>`, /^[245]\d\d /m);
      replies.push(rcpt.trim());
      if (rcpt.startsWith("250")) accepted++;
    }
    if (accepted > 0) {
      await c.command("DATA", /^354 /);
      await c.command("Subject: rate\r\n\r\nhello\r\n.", /^250 /);
    } else {
      await c.command("RSET", /^250 /);
    }
  }
  await c.command("QUIT", /^221 /);
  await c.waitClosed();
  return replies;
}

test("conn-rate: past MXSCREEN_MAX_CONN_RATE a minute the next connection gets 421 4.7.0 before any greeting, logged CONN-RATE; per /24 likewise", async () => {
  const node = await startServer({ ...ENV, MXSCREEN_MAX_CONN_RATE: "2", MXSCREEN_MAX_CONN_RATE_PREFIX: "4" });
  assert.deepEqual([await firstReply(node, "127.0.16.1"), await firstReply(node, "127.0.16.1")].map((r) => r.slice(0, 3)), ["220", "220"]);
  assert.match(await firstReply(node, "127.0.16.1"), /^421 4\.7\.0 \S+ Error: too many connections from 127\.0\.16\.1$/);
  await node.waitForLine(
    /event=CONN-RATE client=127\.0\.16\.1:\d+ limit=client key=127\.0\.16\.1 connections_per_minute=3 .*action=enforce$/,
  );
  assert.match(await firstReply(node, "127.0.16.2"), /^220/, "another address of the /24: its 4th connection");
  assert.match(await firstReply(node, "127.0.16.3"), /^421 4\.7\.0 /, "the /24's 5th");
  await node.waitForLine(/event=CONN-RATE client=127\.0\.16\.3:\d+ limit=prefix key=127\.0\.16\.0\/24 connections_per_minute=5 /);
  assert.match(await firstReply(node, "127.0.17.1"), /^220-/, "another network is not counted with it");
});

test("msg-rate: past MXSCREEN_MAX_MSG_RATE an hour, across two sessions, the next MAIL gets 450 4.7.1 and the session goes on", async () => {
  const node = await startServer({ ...ENV, MXSCREEN_MAX_MSG_RATE: "2" });
  assert.deepEqual(await send(node, "127.0.18.1", [1]), ["250 2.1.0 Ok", "250 2.1.5 Ok"]);
  await node.waitForLine(/event="PASS NEW" client=127\.0\.18\.1:/);
  assert.deepEqual(await send(node, "127.0.18.1", [1, 1]), [
    "250 2.1.0 Ok",
    "250 2.1.5 Ok",
    "450 4.7.1 Error: too much mail from 127.0.18.1",
  ]);
  await node.waitForLine(
    /event=MSG-RATE client=127\.0\.18\.1:\d+ limit=client key=127\.0\.18\.1 messages_per_hour=3 .*messages=1 .*action=enforce$/,
  );
  assert.deepEqual(await send(node, "127.0.18.2", [1]), ["250 2.1.0 Ok", "250 2.1.5 Ok"], "another address has its own count");
});

test("rcpt-rate: past MXSCREEN_MAX_RCPT_RATE an hour, across two sessions, the next RCPT gets 450 4.7.1 and the ones before are delivered", async () => {
  const node = await startServer({ ...ENV, MXSCREEN_MAX_RCPT_RATE: "3" });
  assert.deepEqual(await send(node, "127.0.19.1", [2]), ["250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok"]);
  await node.waitForLine(/event="PASS NEW" client=127\.0\.19\.1:/);
  assert.deepEqual(await send(node, "127.0.19.1", [2]), [
    "250 2.1.0 Ok",
    "250 2.1.5 Ok",
    "450 4.7.1 <r2@example.org>: Error: too many recipients from 127.0.19.1",
  ]);
  await node.waitForLine(
    /event=RCPT-RATE client=127\.0\.19\.1:\d+ limit=client key=127\.0\.19\.1 recipients_per_hour=4 rcpt=r2@example\.org .*messages=1 recipients=1 .*action=enforce$/,
  );
});

test(
  `rates are the fleet's: connections from one address split over a ${here} node and a ${other} node trip MXSCREEN_MAX_CONN_RATE, and so do messages`,
  async () => {
    const sqld = await startSqld();
    const env = {
      ...ENV,
      MXSCREEN_DB_URL: sqld.url,
      MXSCREEN_COUNTERS_INTERVAL: "200ms",
      MXSCREEN_MAX_CONN_RATE: "3",
      MXSCREEN_MAX_MSG_RATE: "2",
    };
    const a = await startServer({ ...env, MXSCREEN_NODE: `a-${here}` });
    const b = await startServer({ ...env, MXSCREEN_NODE: `b-${other}` }, { runtime: other });
    assert.match(await firstReply(a, "127.0.20.1"), /^220/);
    assert.match(await firstReply(a, "127.0.20.1"), /^220/);
    // A writes its counts and B reads them every 200 ms.
    await new Promise((r) => setTimeout(r, 700));
    assert.match(await firstReply(b, "127.0.20.1"), /^220/, "the third within the minute, the first at B");
    assert.match(await firstReply(b, "127.0.20.1"), /^421 4\.7\.0 /, "the fourth, the second at B: over the fleet's rate");
    await b.waitForLine(/event=CONN-RATE client=127\.0\.20\.1:\d+ limit=client key=127\.0\.20\.1 connections_per_minute=4 /);

    assert.deepEqual(await send(b, "127.0.21.1", [1, 1]), ["250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.0 Ok", "250 2.1.5 Ok"]);
    await b.waitForLine(/event="PASS NEW" client=127\.0\.21\.1:/);
    await new Promise((r) => setTimeout(r, 700));
    assert.deepEqual(
      await send(a, "127.0.21.1", [1]),
      ["450 4.7.1 Error: too much mail from 127.0.21.1"],
      "the two sent through B count at A",
    );
  },
  { timeoutMs: 40_000 },
);

test(
  "MXSCREEN_PROCESSES=2: the processes of one node each count under a name of their own, so their connections add up to the node's rate",
  async () => {
    const node = await startServer({ ...ENV, MXSCREEN_PROCESSES: "2", MXSCREEN_COUNTERS_INTERVAL: "100ms", MXSCREEN_MAX_CONN_RATE: "3" });
    await node.waitForLine(/msg="mxscreen started" .*process=2\/2/);
    // The kernel spreads the connections over both processes' listeners; with one name for both,
    // each would count only its own (about four each) and refuse one or two, not all five past three.
    const replies: string[] = [];
    for (let i = 0; i < 8; i++) {
      replies.push((await firstReply(node, "127.0.22.1")).slice(0, 3));
      await new Promise((r) => setTimeout(r, 400));
    }
    assert.deepEqual(replies, ["220", "220", "220", "421", "421", "421", "421", "421"]);
  },
  { timeoutMs: 30_000 },
);
