import assert from "node:assert/strict";
import { test } from "../harness.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { startServer } from "../helpers/server.ts";

const E2E = { timeoutMs: 30_000 };
const FAST = { MXSCREEN_GREET_WAIT: "200ms", MXSCREEN_ACCEPT_DOMAINS: "example.org", MXSCREEN_OWN_NAMES: "mx2.test.example" };

test(
  "helo-claims: a HELO naming our mail domain, another of our names or the address it connected to is refused at RCPT and logged",
  async () => {
    const server = await startServer(FAST);
    const cases: [string, string, string][] = [
      ["127.0.2.1", "example.org", "one of our mail domains"],
      ["127.0.2.2", "MX2.test.example", "our own host name"],
      ["127.0.2.3", "[127.0.0.1]", "our own address"],
    ];
    for (const [source, helo, claim] of cases) {
      const c = await RawClient.greeted(server.port, source);
      await c.command(`EHLO ${helo}`, /250 ENHANCEDSTATUSCODES\r\n$/);
      await c.command("MAIL FROM:<a@example.net>", /^250 /m);
      await c.command(
        "RCPT TO:<someone@example.org>",
        /^550 5\.7\.1 <someone@example\.org>: Helo command rejected: you are not (us|at our address)\r\n$/m,
      );
      await c.command("RCPT TO:<postmaster@example.org>", /^250 /m);
      await c.command("QUIT", /^221 /m);
      const escaped = helo.replace(/[.[\]]/g, "\\$&");
      await server.waitForLine(
        new RegExp(`event=HELO-CLAIMS client=${source.replaceAll(".", "\\.")}:\\d+ helo="?${escaped}"? claim="${claim}" .*action=enforce$`),
      );
    }
    const own = await RawClient.greeted(server.port, "127.0.0.1");
    await own.command("EHLO [127.0.0.1]", /250 ENHANCEDSTATUSCODES\r\n$/);
    await own.command("MAIL FROM:<a@example.net>", /^250 /m);
    await own.command("RCPT TO:<someone@example.org>", /^250 /m, 5_000);
    own.close();
  },
  E2E,
);

/** A bot that waits for the greeting, then sends each line `gapMs` after the last without reading a reply. */
async function blindBot(port: number, source: string, gapMs: number): Promise<RawClient> {
  const bot = await RawClient.greeted(port, source);
  bot.socket.setNoDelay(true);
  for (
    const line of [
      "EHLO bot.example.net",
      "MAIL FROM:<a@example.net>",
      "RCPT TO:<b@example.org>",
      "DATA",
      "Subject: spam",
      "",
      "buy",
      ".",
      "QUIT",
    ]
  ) {
    if (bot.isClosed) break;
    bot.write(`${line}\r\n`);
    await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
  return bot;
}

// 200 ms between commands: one command per read even on a loaded machine, so that without
// stutter the bot's spam goes through (as the issue found with 2 ms on an idle one), and the
// first EHLO reply line is out before the bot's MAIL arrives; the stutter delay is far longer,
// so that a loop held up by the load still reads the bot's next command before the timer
// writes the final line.
const GAP_MS = 200;

test(
  "stutter: a bot sending each command shortly after the last without reading gets PASS NEW without it, and is caught with it (inline and in a worker)",
  async () => {
    const plain = await startServer(FAST);
    const through = await blindBot(plain.port, "127.0.2.11", GAP_MS);
    await through.waitClosed();
    assert.match(through.text, /250 2\.0\.0 Ok: queued as \w+\r\n221 /, "without stutter its spam goes through");
    await plain.waitForLine(/event="PASS NEW" client=127\.0\.2\.11:\d+ .*messages=1 /);
    for (const workers of ["0", "1"]) {
      const server = await startServer({ ...FAST, MXSCREEN_STUTTER: "true", MXSCREEN_STUTTER_DELAY: "800ms", MXSCREEN_WORKERS: workers });
      // A first session warms the server (and its worker) up: a cold one has taken over 100 ms
      // to write its first EHLO line, and the bot was then caught before it rather than after it.
      const warm = await RawClient.greeted(server.port, "127.0.2.15");
      await warm.command("EHLO warm.example.net", /^250 ENHANCEDSTATUSCODES\r\n/m);
      await warm.command("QUIT", /^221 /m);
      const bot = await blindBot(server.port, "127.0.2.12", GAP_MS);
      await bot.waitClosed();
      assert.match(
        bot.text,
        /^250-mx\.test\.example Hello bot\.example\.net \[127\.0\.2\.12\]\r\n(250-.*\r\n)*250 ENHANCEDSTATUSCODES\r\n554 5\.5\.0 mx\.test\.example Error: SMTP protocol synchronization; closing\r\n$/m,
      );
      await server.waitForLine(
        /event=PIPELINING client=127\.0\.2\.12:\d+ command=EHLO offered=false ahead="MAIL FROM:<a@example\.net>" before_final_line=true .*end=check .*action=enforce$/,
      );
      // 2 ms apart: some commands share a read, some do not; caught either way.
      const fast = await blindBot(server.port, "127.0.2.14", 2);
      await fast.waitClosed();
      await server.waitForLine(/event=PIPELINING client=127\.0\.2\.14:\d+ .*end=check .*action=enforce$/);
      assert.ok(!server.lines.some((line) => /DELIVERED/.test(line)), `workers=${workers}: nothing delivered`);
      if (workers === "1") continue;
      // A client that reads every reply to its end is not caught, and waits once per stuttered reply, on its first visit only.
      const polite = await RawClient.greeted(server.port, "127.0.2.13");
      const started = Date.now();
      await polite.command("EHLO client.example.net", /^250 ENHANCEDSTATUSCODES\r\n/m);
      assert.match(
        await polite.command("MAIL FROM:<a@example.net>", /^250 2\.1\.0 Ok\r\n/m),
        /^250-2\.1\.0 mx\.test\.example\r\n250 2\.1\.0 Ok\r\n$/,
      );
      assert.ok(Date.now() - started >= 1600, "two stuttered replies, 800 ms each");
      await polite.command("QUIT", /^221 /m);
      await server.waitForLine(/event="PASS NEW" client=127\.0\.2\.13:\d+ /);
      const again = await RawClient.greeted(server.port, "127.0.2.13");
      await again.command("EHLO client.example.net", /^250 ENHANCEDSTATUSCODES\r\n/m);
      assert.equal(await again.command("MAIL FROM:<a@example.net>", /^250 2\.1\.0 Ok\r\n/m), "250 2.1.0 Ok\r\n", "passed: no stutter");
      await again.command("QUIT", /^221 /m);
    }
  },
  E2E,
);

/** One counter's value on /metrics. */
async function metric(admin: string, series: string): Promise<number> {
  const text = await (await fetch(`${admin}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  assert.ok(line, `no ${series} in /metrics`);
  return Number(line.split(" ")[1]);
}

/** How long the reply to `line` took to arrive whole. */
async function timed(c: RawClient, line: string, reply: RegExp): Promise<number> {
  const started = Date.now();
  await c.command(line, reply);
  return Date.now() - started;
}

test(
  "tarpit: a client's replies slow down with each hit, within the budget (one session here); the place is freed when it leaves",
  async () => {
    const server = await startServer({
      ...FAST,
      MXSCREEN_TARPIT_DELAY: "400ms",
      MXSCREEN_TARPIT_MAX: "800ms",
      MXSCREEN_MAX_CONNECTIONS: "20",
      MXSCREEN_TARPIT_SHARE: "5",
      MXSCREEN_ACTION_HELO_SYNTAX: "ignore",
    }, { admin: true });
    const a = await RawClient.greeted(server.port, "127.0.2.21");
    assert.ok(await timed(a, "HELO localhost", /^250 /m) >= 400, "one hit (helo-syntax, only logged): 400 ms");
    assert.ok(await timed(a, "MAIL FROM:<a@nowhere.invalid>", /^550 5\.1\.8 /m) >= 800, "two hits (sender-domain): 800 ms");
    assert.ok(await timed(a, "NOOP", /^250 /m) >= 800, "no more than MXSCREEN_TARPIT_MAX");
    const b = await RawClient.greeted(server.port, "127.0.2.22");
    await b.command("HELO localhost", /^250 /m);
    assert.equal(await metric(server.admin, "mxscreen_tarpit_sessions_total"), 1, "the budget holds one session: the second is not slowed");
    assert.ok(await metric(server.admin, 'mxscreen_tarpit_skipped_total{reason="budget"}') >= 1);
    assert.ok(await metric(server.admin, "mxscreen_tarpit_delay_seconds_total") >= 2);
    await a.command("QUIT", /^221 /m);
    await a.waitClosed();
    assert.ok(await timed(b, "NOOP", /^250 /m) >= 400, "with the place free, the second client's replies slow down");
    assert.equal(await metric(server.admin, "mxscreen_tarpit_sessions_total"), 2);
    await b.command("QUIT", /^221 /m);
  },
  E2E,
);

test("tarpit: under stress no reply is slowed, and the place is given up", async () => {
  const server = await startServer({
    ...FAST,
    MXSCREEN_TARPIT_DELAY: "400ms",
    MXSCREEN_STRESS_CONNECTIONS: "2",
    MXSCREEN_ACTION_HELO_SYNTAX: "ignore",
  }, { admin: true });
  const a = await RawClient.greeted(server.port, "127.0.2.31");
  assert.ok(await timed(a, "HELO localhost", /^250 /m) >= 400, "slowed while the process is not under stress");
  const b = await RawClient.open(server.port, "127.0.2.32");
  await server.waitForLine(/under stress: greet wait shortened/);
  await a.command("NOOP", /^250 /m);
  assert.equal(await metric(server.admin, 'mxscreen_tarpit_skipped_total{reason="stress"}'), 1);
  assert.equal(await metric(server.admin, "mxscreen_tarpit_sessions"), 0);
  b.close();
  await a.command("QUIT", /^221 /m);
}, E2E);
