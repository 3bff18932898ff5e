import assert from "node:assert/strict";
import { runtimeName } from "../../src/net/runtime/which-runtime.ts";
import { test } from "../harness.ts";
import { renderedDom } from "../helpers/chromium.ts";
import { cli } from "../helpers/cli.ts";
import { startPostfix } from "../helpers/postfix.ts";
import { startServer } from "../helpers/server.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { startSqld } from "../helpers/sqld.ts";
import { swaks } from "../helpers/swaks.ts";

const here = runtimeName().split(" ")[0] as "deno" | "bun";
const other = here === "deno" ? "bun" : "deno";

/**
 * helo-syntax only logged, greylisting on: every first attempt gets a 4xx, which a real MTA
 * answers by coming back and a bot by going away. A bot not back within 2 s counts as one.
 */
const ENV = {
  MXSCREEN_GREET_WAIT: "300ms",
  MXSCREEN_ACCEPT_DOMAINS: "example.org",
  MXSCREEN_ACTION_HELO_SYNTAX: "ignore",
  MXSCREEN_GREYLIST: "true",
  MXSCREEN_GREYLIST_DELAY: "1s",
  MXSCREEN_OBSERVE_RETRY_WINDOW: "2s",
  MXSCREEN_FOLLOW_IDLE_INTERVAL: "250ms",
};

/** The CLI reads the settings the nodes read, as an operator's would from the same .env. */
const CLI_ENV = {
  MXSCREEN_ACTION_HELO_SYNTAX: ENV.MXSCREEN_ACTION_HELO_SYNTAX,
  MXSCREEN_OBSERVE_RETRY_WINDOW: ENV.MXSCREEN_OBSERVE_RETRY_WINDOW,
};

interface Estimate {
  check: string;
  action: string | null;
  clients: number;
  legitimate: number;
  bot: number;
  unknown: number;
  falsePositiveRate: number | null;
  reasons: Record<string, number>;
}

test(
  `observe: Postfix and swaks that retry after a 4xx count as legitimate, a bot that does not as a bot, across a ${here} and a ${other} node; shown by mxscreen stats, /api/stats and the dashboard`,
  async () => {
    const sqld = await startSqld();
    const a = await startServer({ ...ENV, MXSCREEN_DB_URL: sqld.url, MXSCREEN_NODE: `a-${here}` }, { admin: true });
    const b = await startServer({ ...ENV, MXSCREEN_DB_URL: sqld.url, MXSCREEN_NODE: `b-${other}` }, { runtime: other });

    // A real MTA whose HELO name is not fully qualified: greylisted, it retries from its queue.
    const postfix = await startPostfix(a.port, "127.0.8.11", "relay");
    const handed = await swaks([
      "--server",
      `127.0.0.1:${postfix.port}`,
      "--helo",
      "localhost.example",
      "--from",
      "someone@example.net",
      "--to",
      "user@example.org",
    ]);
    assert.equal(handed.code, 0, handed.output);

    // A sender tried through node A, greylisted, then delivered through node B.
    const attempt = (port: number) =>
      swaks([
        "--server",
        `127.0.0.1:${port}`,
        "--local-interface",
        "127.0.9.1",
        "--helo",
        "laptop",
        "--from",
        "a@example.net",
        "--to",
        "b@example.org",
      ]);
    const first = await attempt(a.port);
    assert.match(first.output, /<\*\* 451 4\.7\.1 /);
    let retried = first;
    for (let i = 0; i < 10 && retried.code !== 0; i++) {
      await new Promise((r) => setTimeout(r, 1_100));
      retried = await attempt(b.port);
    }
    assert.equal(retried.code, 0, retried.output);

    // A bot: the same kind of HELO, greylisted, and never seen again.
    const bot = await RawClient.greeted(a.port, "127.0.10.1");
    await bot.command("EHLO bot", /^250 /m);
    await bot.command("MAIL FROM:<x@example.net>", /^250 /);
    await bot.command("RCPT TO:<u@example.org>", /^451 4\.7\.1 /);
    await bot.command("QUIT", /^221 /);

    // Its queue retries after minutes; flushed, it retries now.
    await postfix.waitForLine(/status=deferred \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 451 4\.7\.1 /);
    await postfix.flush();
    const sent = await postfix.waitForLine(/postfix\/smtp\[\d+\]: \w+: to=<user@example\.org>, .*status=sent/, 20_000);
    assert.match(sent, /status=sent \(250 /);
    await a.waitForLine(/event=HELO client=127\.0\.8\.11:\d+ .*messages=1 /);

    // Judged once the bot's 4xx is older than the retry window, and both nodes' rows are in sqld.
    let stats: { code: number | null; stdout: string; stderr: string } = { code: null, stdout: "", stderr: "" };
    let helo: Estimate | undefined;
    for (let i = 0; i < 30 && !(helo?.legitimate === 2 && helo.bot === 1); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 300));
      stats = await cli(sqld.url, ["stats", "--json"], undefined, CLI_ENV);
      assert.equal(stats.code, 0, stats.stderr);
      helo = (JSON.parse(stats.stdout).observed.checks as Estimate[]).find((c) => c.check === "helo-syntax");
    }
    assert.ok(helo, stats.stdout);
    assert.deepEqual([helo.clients, helo.legitimate, helo.bot, helo.unknown], [3, 2, 1, 0], stats.stdout);
    assert.deepEqual([helo.reasons.retried, helo.reasons["no-retry"]], [2, 1]);
    assert.equal(helo.falsePositiveRate, 2 / 3);

    const table = await cli(sqld.url, ["stats"], undefined, CLI_ENV);
    assert.match(
      table.stdout,
      /what enforcing would cost, checks in ignore or observe \(hits from 7d to 2s ago; a 4xx not followed by a delivery within 2s counts as a bot\):/,
    );
    assert.match(table.stdout, /^helo-syntax +ignore +3 +\d+ +2 +1 +0 +67% \(2 of 3 with evidence\)$/m);

    const api = await (await fetch(`${a.admin}/api/stats`)).json();
    const apiHelo = (api.fleet.observed.checks as Estimate[]).find((c) => c.check === "helo-syntax")!;
    assert.deepEqual([apiHelo.action, apiHelo.clients, apiHelo.legitimate, apiHelo.bot, api.fleet.observed.retryWindowMs], [
      "ignore",
      3,
      2,
      1,
      2_000,
    ]);

    const dom = await renderedDom(`${a.admin}/`);
    assert.match(
      dom,
      /<table id="observed">[\s\S]*<tr><td>helo-syntax<\/td><td>ignore<\/td><td>3<\/td><td>\d+<\/td><td>2<\/td><td>1<\/td><td>0<\/td><td>67% \(2 of 3 with evidence\)<\/td><\/tr>/,
    );
  },
  { timeoutMs: 60_000 },
);
