import assert from "node:assert/strict";
import { runtimeName } from "../../src/net/runtime/which-runtime.ts";
import { test } from "../harness.ts";
import { startUpstreamPostfix } from "../helpers/postfix.ts";
import { becomes } from "../helpers/screen-probe.ts";
import { type RunningServer, startServer } from "../helpers/server.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { startSqld } from "../helpers/sqld.ts";

const here = runtimeName().split(" ")[0] as "deno" | "bun";
const other = here === "deno" ? "bun" : "deno";

/** Relayed to a real Postfix that knows someone@ and postmaster@example.org, and answers anyone else 550 5.1.1. */
const HARVEST = {
  MXSCREEN_GREET_WAIT: "200ms",
  MXSCREEN_ACCEPT_DOMAINS: "example.org",
  MXSCREEN_HARVEST_THRESHOLD: "4",
  MXSCREEN_HARVEST_PREFIX_CLIENTS: "3",
  MXSCREEN_MAX_BAD_RCPT_PREFIX: "1000",
  MXSCREEN_GREYLIST_DELAY: "1s",
  MXSCREEN_TARPIT_DELAY: "150ms",
};

const UNKNOWN = /^550 5\.1\.1 <guess\d+@example\.org>: Recipient address rejected: User unknown/;
const GREYLISTED = /^451 4\.7\.1 <guess\d+@example\.org>: Recipient address rejected: Greylisted, try again later\r\n$/;

/** A harvester from `source`: a guess at example.org for each of `answers`, each answered so, then QUIT. */
async function harvestFrom(server: RunningServer, source: string, first: number, answers: RegExp[] = [UNKNOWN, UNKNOWN]): Promise<void> {
  const c = await RawClient.greeted(server.port, source);
  await c.command("HELO bot.example", /^250 /);
  await c.command("MAIL FROM:<a@example.net>", /^250 /);
  for (const [i, answer] of answers.entries()) await c.command(`RCPT TO:<guess${first + i}@example.org>`, answer);
  await c.command("QUIT", /^221 /);
  await c.waitClosed();
}

/**
 * A sender never seen before, to the real user: greylisted while example.org is under harvest;
 * postmaster@ never. It is tarpitted from its first reply (one hit for the harvest).
 */
async function newSender(server: RunningServer, source: string): Promise<void> {
  const c = await RawClient.greeted(server.port, source);
  const helo = performance.now();
  await c.command("HELO mail.sender.example", /^250 /);
  assert.ok(performance.now() - helo >= 140, "a new client's HELO reply waits MXSCREEN_TARPIT_DELAY while a domain is under harvest");
  await c.command("MAIL FROM:<a@example.net>", /^250 /);
  await c.command(
    "RCPT TO:<someone@example.org>",
    /^451 4\.7\.1 <someone@example\.org>: Recipient address rejected: Greylisted, try again later\r\n$/,
  );
  await c.command("RCPT TO:<postmaster@example.org>", /^250 /);
  await c.command("QUIT", /^221 /);
}

test(
  "harvest behind a real Postfix: its 550 5.1.1 answers put example.org under harvest, new senders are greylisted for it, and the /24 whose third address harvests is banned",
  async () => {
    const postfix = await startUpstreamPostfix();
    const node = await startServer({ ...HARVEST, MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${postfix.port}` }, { admin: true });
    await harvestFrom(node, "127.0.63.1", 1);
    await harvestFrom(node, "127.0.63.2", 3);
    await node.waitForLine(
      /level=warn msg="recipient domain under harvest across the fleet: clients not yet passed are greylisted for it" domain=example\.org bad_recipients=4 threshold=4/,
    );
    await node.waitForLine(
      /event=HARVEST client=127\.0\.63\.2:\d+ .*domain=example\.org domain_bad_recipients=4 prefix=127\.0\.63\.0\/24 prefix_clients=2 .*action=enforce$/,
    );
    await newSender(node, "127.0.64.1");
    await node.waitForLine(/event=GREYLIST client=127\.0\.64\.1:\d+ .*also=HARVEST\b.*action=enforce$/);
    // 127.0.63.1 passed before the harvest began: Postfix answers it, and it loses its pass.
    await harvestFrom(node, "127.0.63.1", 9);
    await node.waitForLine(/event=HARVEST client=127\.0\.63\.1:\d+ .*prefix_clients=2 .*action=enforce$/);
    await becomes(node, "127.0.63.1", "220-", 2_000);
    // A new harvester learns nothing: its guesses are greylisted before Postfix is asked, and
    // only a retry after MXSCREEN_GREYLIST_DELAY gets Postfix's answer (and is counted).
    await harvestFrom(node, "127.0.63.3", 5, [GREYLISTED]);
    await new Promise((r) => setTimeout(r, 1_100));
    await harvestFrom(node, "127.0.63.3", 5, [UNKNOWN, GREYLISTED]);
    await node.waitForLine(/event=HARVEST client=127\.0\.63\.3:\d+ .*prefix=127\.0\.63\.0\/24 prefix_clients=3 .*action=ban$/);
    await becomes(node, "127.0.63.200", "554 ", 2_000);
    await node.waitForLine(/event=BANNED client=127\.0\.63\.200:\d+ ban=127\.0\.63\.0\/24 reason=HARVEST /);
    const metrics = await (await fetch(`${node.admin}/metrics`)).text();
    assert.match(metrics, /^mxscreen_harvest_domains 1$/m);
    assert.match(metrics, /^mxscreen_harvest_changes_total\{state="enter"\} 1$/m);
    assert.match(metrics, /^mxscreen_check_hits_total\{action="ban",check="harvest"\} 1$/m);
  },
  { timeoutMs: 60_000 },
);

test(
  `a harvest spread over a ${here} node and a ${other} node on sqld: neither sees enough alone, both put example.org under harvest, greylist new senders, and the /24 is banned on both`,
  async () => {
    const sqld = await startSqld();
    const postfix = await startUpstreamPostfix();
    // No admin API here, so no nudge: bans and passes reach the other node by polling, kept at the fast pace.
    const env = {
      ...HARVEST,
      MXSCREEN_HARVEST_THRESHOLD: "6",
      MXSCREEN_FOLLOW_IDLE_INTERVAL: "250ms",
      MXSCREEN_DB_URL: sqld.url,
      MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${postfix.port}`,
    };
    const a = await startServer({ ...env, MXSCREEN_NODE: `a-${here}` });
    const b = await startServer({ ...env, MXSCREEN_NODE: `b-${other}` }, { runtime: other });
    await harvestFrom(a, "127.0.61.1", 1);
    await harvestFrom(b, "127.0.61.2", 3);
    await harvestFrom(a, "127.0.61.3", 5);
    // Each node writes its counts and reads the other's every 5 s: 4 at one, 2 at the other, 6 together.
    const entered =
      /msg="recipient domain under harvest across the fleet: clients not yet passed are greylisted for it" domain=example\.org bad_recipients=6 /;
    await Promise.all([a.waitForLine(entered, 15_000), b.waitForLine(entered, 15_000)]);
    await newSender(a, "127.0.62.1");
    await newSender(b, "127.0.62.2");
    // 127.0.61.1 passed at node a before the harvest began: not greylisted, Postfix answers, and the
    // /24's third address (one counted at each node) bans the whole network.
    await harvestFrom(b, "127.0.61.1", 7);
    await b.waitForLine(
      new RegExp(
        `event=HARVEST client=127\\.0\\.61\\.1:\\d+ domain=example\\.org domain_bad_recipients=8 prefix=127\\.0\\.61\\.0/24 prefix_clients=3 .*action=ban$`,
      ),
    );
    await becomes(b, "127.0.61.200", "554 ", 2_000);
    await becomes(a, "127.0.61.201", "554 ", 2_000);
    await a.waitForLine(new RegExp(`event=BANNED client=127\\.0\\.61\\.201:\\d+ ban=127\\.0\\.61\\.0/24 reason=HARVEST by=b-${other}`));
  },
  { timeoutMs: 60_000 },
);
