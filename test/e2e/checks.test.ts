import assert from "node:assert/strict";
import { test } from "../harness.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { guessRecipients } from "../helpers/screen-probe.ts";
import { startServer } from "../helpers/server.ts";
import { spooled } from "../helpers/spooled.ts";
import { swaks } from "../helpers/swaks.ts";
import { query, rowsEventually } from "../helpers/store-rows.ts";

const E2E = { timeoutMs: 30_000 };
const FAST = { MXSCREEN_GREET_WAIT: "300ms", MXSCREEN_ACCEPT_DOMAINS: "example.org" };

for (const workers of ["0", "1"]) {
  test(
    `pipelining: commands pushed before our reply get 554, close, PIPELINING in log and store, nothing spooled (workers=${workers})`,
    async () => {
      const server = await startServer({ ...FAST, MXSCREEN_WORKERS: workers });
      const bot = await RawClient.greeted(server.port, "127.0.1.11");
      await bot.command("EHLO bot.example", /250 ENHANCEDSTATUSCODES\r\n$/);
      bot.write("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: spam\r\n\r\nbuy\r\n.\r\n");
      await bot.waitClosed();
      assert.match(bot.text, /250 ENHANCEDSTATUSCODES\r\n554 5\.5\.0 mx\.test\.example Error: SMTP protocol synchronization; closing\r\n$/);
      await server.waitForLine(
        /event=PIPELINING client=127\.0\.1\.11:\d+ command=MAIL offered=false ahead="RCPT TO:<b@example\.org>\\r\\nDATA\\r\\n.*" helo=bot\.example .*end=check .*action=enforce$/,
      );
      const events = await rowsEventually(server.dbUrl, "SELECT check_id, action, evidence FROM events WHERE event = 'PIPELINING'");
      assert.equal(events[0]?.check_id, "pipelining");
      assert.match(String(events[0]?.evidence), /"command":"MAIL"/);
      assert.equal(spooled(server.spoolDir).length, 0);
    },
    E2E,
  );
}

test("pipelining: with MXSCREEN_PIPELINING=true, swaks --pipeline passes and delivers", async () => {
  const server = await startServer({ ...FAST, MXSCREEN_PIPELINING: "true" });
  const result = await swaks([
    "--server",
    `127.0.0.1:${server.port}`,
    "--local-interface",
    "127.0.1.12",
    "--helo",
    "client.example.net",
    "--pipeline",
    "--from",
    "a@example.net",
    "--to",
    "b@example.org",
  ]);
  assert.equal(result.code, 0, result.output);
  assert.match(
    result.output,
    / -> MAIL FROM:<a@example\.net>\n -> RCPT TO:<b@example\.org>\n -> DATA\n<-  250 2\.1\.0 Ok\n/,
    "swaks did pipeline",
  );
  assert.match(result.output, /<- {2}250 2\.0\.0 Ok: queued as/);
  await server.waitForLine(/event="PASS NEW" client=127\.0\.1\.12:/);
  assert.equal(spooled(server.spoolDir).length, 1);
}, E2E);

test("non-smtp, bare LF and unknown commands each end the session with their reply and log tag", async () => {
  const server = await startServer(FAST);
  const http = await RawClient.greeted(server.port, "127.0.1.21");
  http.write("GET / HTTP/1.1\r\n");
  await http.waitClosed();
  assert.match(http.text, /\r\n521 5\.5\.1 mx\.test\.example Error: non-SMTP command; closing\r\n$/);
  await server.waitForLine(/event=NON-SMTP client=127\.0\.1\.21:\d+ sent="GET \/ HTTP\/1\.1" .*action=enforce$/);

  const lf = await RawClient.greeted(server.port, "127.0.1.22");
  lf.write("HELO bot.example\n");
  await lf.waitClosed();
  assert.match(lf.text, /\r\n521 5\.5\.2 /);
  await server.waitForLine(/event=BARE-LF client=127\.0\.1\.22:/);

  const scanner = await RawClient.greeted(server.port, "127.0.1.23");
  for (const verb of ["A1", "A2", "A3"]) await scanner.command(verb, /^500 5\.5\.2 /);
  await scanner.command("A4", /^421 4\.7\.0 mx\.test\.example Error: too many unrecognized commands; closing\r\n$/);
  await scanner.waitClosed();
  await server.waitForLine(/event=UNKNOWN-CMDS client=127\.0\.1\.23:\d+ unknown=4 last=A4 /);
}, E2E);

test("dictionary: the sixth unknown recipient gets 421, the client is banned and refused on its next connection", async () => {
  const server = await startServer(FAST);
  const bot = await RawClient.greeted(server.port, "127.0.1.31");
  await bot.command("HELO bot.example", /^250 /);
  await bot.command("MAIL FROM:<a@example.net>", /^250 /);
  for (let i = 1; i <= 5; i++) await bot.command(`RCPT TO:<u${i}@elsewhere.example>`, /^554 5\.7\.1 /);
  await bot.command("RCPT TO:<u6@elsewhere.example>", /^421 4\.7\.0 /);
  await bot.waitClosed();
  await server.waitForLine(/event=DICTIONARY client=127\.0\.1\.31:\d+ bad_recipients=6 last=u6@elsewhere\.example .*action=ban$/);
  const bans = await rowsEventually(server.dbUrl, "SELECT prefix, check_id FROM list_changes WHERE kind = 'ban'");
  assert.deepEqual(bans.map((b) => [b.prefix, b.check_id]), [["127.0.1.31/32", "dictionary"]]);
  const again = await RawClient.open(server.port, "127.0.1.31");
  await again.waitClosed(3000);
  assert.match(again.text, /^554 5\.7\.1 /);
}, E2E);

test("delayed rejection: a bare-IP HELO is refused at RCPT, postmaster@ still gets the message", async () => {
  const server = await startServer(FAST);
  const c = await RawClient.greeted(server.port, "127.0.1.41");
  await c.command("HELO 127.0.1.41", /^250 /);
  await c.command("MAIL FROM:<a@example.net>", /^250 /);
  await c.command(
    "RCPT TO:<someone@example.org>",
    /^550 5\.7\.1 <someone@example\.org>: Helo command rejected: bare IP address without brackets\r\n$/,
  );
  await c.command("RCPT TO:<postmaster@example.org>", /^250 /);
  await c.command("DATA", /^354 /);
  await c.command("Subject: report\r\n\r\nhello\r\n.", /^250 2\.0\.0 Ok: queued/);
  await c.command("QUIT", /^221 /);
  await server.waitForLine(
    /event=HELO client=127\.0\.1\.41:\d+ helo=127\.0\.1\.41 problem="bare IP address without brackets" .*messages=1 .*action=enforce$/,
  );
  assert.equal(spooled(server.spoolDir).length, 1);
  await rowsEventually(server.dbUrl, "SELECT * FROM events WHERE event = 'HELO'");
  // Admitted when it waited out the greeting, taken back when its session failed a check.
  const passes = await query(server.dbUrl, "SELECT op FROM list_changes WHERE kind = 'pass' ORDER BY seq");
  assert.equal(passes.at(-1)?.op, "remove", "a client that failed a check is not passed");
}, E2E);

test("helo-schizo and observe mode: in observe mode nothing is refused and the hit is logged with action=observe", async () => {
  const server = await startServer({ ...FAST, MXSCREEN_MODE: "observe" });
  const c = await RawClient.greeted(server.port, "127.0.1.51");
  await c.command("EHLO one.example", /250 ENHANCEDSTATUSCODES\r\n$/);
  await c.command("HELO two.example", /^250 mx\.test\.example Hello two\.example/);
  await c.command("QUIT", /^221 /);
  await server.waitForLine(/event=HELO-SCHIZO client=127\.0\.1\.51:\d+ helo=two\.example earlier=one\.example .*action=observe$/);

  const enforcing = await startServer(FAST);
  const bot = await RawClient.greeted(enforcing.port, "127.0.1.52");
  await bot.command("EHLO one.example", /250 ENHANCEDSTATUSCODES\r\n$/);
  await bot.command(
    "HELO two.example",
    /^550 5\.7\.1 mx\.test\.example Error: client \[127\.0\.1\.52\] changed its HELO name; closing\r\n$/,
  );
  await bot.waitClosed();
}, E2E);

test("ehlo-refused: a new client gets 502 to EHLO; a bot that quits is banned, a client that says HELO delivers", async () => {
  const server = await startServer({ ...FAST, MXSCREEN_EHLO_REFUSAL: "true" });
  const bot = await RawClient.greeted(server.port, "127.0.1.61");
  await bot.command("EHLO bot.example", /^502 5\.5\.1 /);
  await bot.command("QUIT", /^221 /);
  await server.waitForLine(/event=EHLO-REFUSED client=127\.0\.1\.61:\d+ .*action=ban$/);
  const bans = await rowsEventually(server.dbUrl, "SELECT prefix FROM list_changes WHERE kind = 'ban'");
  assert.deepEqual(bans.map((b) => b.prefix), ["127.0.1.61/32"]);

  const result = await swaks([
    "--server",
    `127.0.0.1:${server.port}`,
    "--local-interface",
    "127.0.1.62",
    "--helo",
    "client.example.net",
    "--from",
    "a@example.net",
    "--to",
    "b@example.org",
  ]);
  assert.equal(result.code, 0, result.output);
  assert.match(result.output, /<\*\* 502 5\.5\.1 /);
  await server.waitForLine(/event="PASS NEW" client=127\.0\.1\.62:/);
  assert.equal(spooled(server.spoolDir).length, 1);
}, E2E);

test("trap MX: a client reaching RCPT gets 421 and is banned; a spamtrap recipient does the same on a normal node", async () => {
  const server = await startServer({ ...FAST, MXSCREEN_TRAP: "true" });
  const bot = await RawClient.greeted(server.port, "127.0.1.71");
  await bot.command("HELO bot.example", /^250 /);
  await bot.command("MAIL FROM:<a@example.net>", /^250 /);
  await bot.command("RCPT TO:<postmaster@example.org>", /^421 4\.3\.2 /);
  await bot.waitClosed();
  await server.waitForLine(/event=TRAP client=127\.0\.1\.71:\d+ recipient=postmaster@example\.org trap=trap-mx .*action=ban$/);
  assert.equal((await rowsEventually(server.dbUrl, "SELECT prefix FROM list_changes WHERE kind = 'ban'")).length, 1);

  const normal = await startServer({ ...FAST, MXSCREEN_TRAP_RCPTS: "trap@example.org" });
  const spammer = await RawClient.greeted(normal.port, "127.0.1.72");
  await spammer.command("HELO bot.example", /^250 /);
  await spammer.command("MAIL FROM:<a@example.net>", /^250 /);
  await spammer.command("RCPT TO:<trap@example.org>", /^421 4\.3\.2 /);
  await normal.waitForLine(/event=TRAP client=127\.0\.1\.72:\d+ recipient=trap@example\.org trap=spamtrap /);
}, E2E);

test(
  "connection limits: a client over MXSCREEN_MAX_CONN_PER_CLIENT, or its /24 over MXSCREEN_MAX_CONN_PER_PREFIX, gets 421 4.7.0",
  async () => {
    const server = await startServer({
      ...FAST,
      MXSCREEN_GREET_WAIT: "5s",
      MXSCREEN_MAX_CONN_PER_CLIENT: "2",
      MXSCREEN_MAX_CONN_PER_PREFIX: "3",
    });
    const held = [await RawClient.open(server.port, "127.0.4.11"), await RawClient.open(server.port, "127.0.4.11")];
    for (const c of held) await c.until(/^220-/);
    const third = await RawClient.open(server.port, "127.0.4.11");
    await third.waitClosed();
    assert.equal(third.text, "421 4.7.0 mx.test.example Error: too many connections from 127.0.4.11\r\n");
    await server.waitForLine(
      /event=CONNECTION-LIMIT client=127\.0\.4\.11:\d+ limit=client key=127\.0\.4\.11 connections=3 .*action=enforce$/,
    );

    const neighbour = await RawClient.open(server.port, "127.0.4.12");
    await neighbour.until(/^220-/);
    const fourth = await RawClient.open(server.port, "127.0.4.13");
    await fourth.waitClosed();
    assert.match(fourth.text, /^421 4\.7\.0 /);
    await server.waitForLine(/event=CONNECTION-LIMIT client=127\.0\.4\.13:\d+ limit=prefix key=127\.0\.4\.0\/24 connections=4 /);

    held[0].close();
    await held[0].waitClosed();
    const deadline = Date.now() + 3000;
    let again = await RawClient.open(server.port, "127.0.4.11");
    // The server counts the slot free once it has seen the close: retry briefly.
    while (!(await again.until(/^220-|^421/, 3000).then((t) => t.startsWith("220-"))) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      again = await RawClient.open(server.port, "127.0.4.11");
    }
    assert.match(again.text, /^220-/);
    const other = await RawClient.open(server.port, "127.0.5.11");
    await other.until(/^220-/);
  },
  E2E,
);

test(
  "fake-bounce: with MXSCREEN_OWN_HOSTS, swaks's null-sender message that names no host of ours gets 550 after DATA; one that does is delivered",
  async () => {
    const server = await startServer({ ...FAST, MXSCREEN_OWN_HOSTS: "mx1.example.org" });
    const args = (
      source: string,
      body: string,
    ) => [
      "--server",
      `127.0.0.1:${server.port}`,
      "--local-interface",
      source,
      "--helo",
      "mailer.example.net",
      "--from",
      "<>",
      "--to",
      "user@example.org",
      "--body",
      body,
    ];
    const fake = await swaks(args("127.0.4.31", "Your message could not be delivered"));
    assert.match(fake.output, /<\*\* 550 5\.7\.1 Error: bounce for a message that did not pass through our hosts/);
    await server.waitForLine(/event=FAKE-BOUNCE client=127\.0\.4\.31:\d+ own_hosts=mx1\.example\.org .*action=enforce$/);
    const real = await swaks(args("127.0.4.32", "Received: from user.example.org\n\tby mx1.example.org with ESMTP id X\n"));
    assert.equal(real.code, 0, real.output);
    assert.equal(spooled(server.spoolDir).length, 1);
  },
  E2E,
);

test(
  "dictionary across connections: unknown recipients from one /24 add up; the connection that goes over MXSCREEN_MAX_BAD_RCPT_PREFIX is banned",
  async () => {
    const server = await startServer({ ...FAST, MXSCREEN_MAX_BAD_RCPT_PREFIX: "4" });
    for (const source of ["127.0.6.11", "127.0.6.12"]) await guessRecipients(server, source);
    await server.waitForLine(/event=DICTIONARY client=127\.0\.6\.12:\d+ prefix=127\.0\.6\.0\/24 prefix_bad_recipients=6 .*action=ban$/);
    const bans = await rowsEventually(server.dbUrl, "SELECT prefix FROM list_changes WHERE kind = 'ban'");
    assert.deepEqual(bans.map((b) => b.prefix), ["127.0.6.12/32"]);
    assert.ok(
      server.lines.some((line) => /event="PASS NEW" client=127\.0\.6\.11:\d+ .*recipients=0 /.test(line)),
      "under the limit, the first connection was not held against its client",
    );
  },
  E2E,
);

test(
  "greylist: a first attempt gets 451 4.7.1; a retry after MXSCREEN_GREYLIST_DELAY through another node sharing the database is delivered, that node having followed the triplet",
  async () => {
    const nodeA = await startServer({ ...FAST, MXSCREEN_GREYLIST: "true", MXSCREEN_GREYLIST_DELAY: "1s", MXSCREEN_NODE: "node-a" });
    const nodeB = await startServer({
      ...FAST,
      MXSCREEN_GREYLIST: "true",
      MXSCREEN_GREYLIST_DELAY: "1s",
      MXSCREEN_NODE: "node-b",
      MXSCREEN_DB_URL: nodeA.dbUrl,
      MXSCREEN_WORKERS: "1",
    });
    const attempt = (port: number, source: string) =>
      swaks([
        "--server",
        `127.0.0.1:${port}`,
        "--local-interface",
        source,
        "--helo",
        "client.example.net",
        "--from",
        "a@example.net",
        "--to",
        "b@example.org",
      ]);
    const first = await attempt(nodeA.port, "127.0.7.11");
    assert.match(first.output, /<\*\* 451 4\.7\.1 <b@example\.org>: Recipient address rejected: Greylisted, try again later/);
    await nodeA.waitForLine(/event=GREYLIST client=127\.0\.7\.11:\d+ recipient=b@example\.org sender=a@example\.net .*action=enforce$/);
    const tooSoon = await attempt(nodeA.port, "127.0.7.12");
    assert.match(tooSoon.output, /<\*\* 451 4\.7\.1 /, "same /24, retried too soon");
    // Node B reads the other nodes' triplets with its heartbeat, every 5 s.
    await new Promise((r) => setTimeout(r, 5_500));
    const retry = await attempt(nodeB.port, "127.0.7.12");
    assert.equal(retry.code, 0, retry.output);
    assert.ok(!nodeB.lines.some((line) => /event=GREYLIST/.test(line)), "node B never deferred it: it knew the first attempt");
    assert.equal(spooled(nodeB.spoolDir).length, 1);
    await nodeB.waitForLine(/event="PASS NEW" client=127\.0\.7\.12:/);
  },
  E2E,
);

test("IPv6: a dictionary attack from [::1] is logged with its [v6]:port and banned per /64", async () => {
  const server = await startServer({ ...FAST, MXSCREEN_MAX_BAD_RCPT: "1" }, { listen: (port) => `[::1]:${port}` });
  const bot = await RawClient.greeted(server.port, "::1");
  await bot.command("HELO bot.example", /^250 /);
  await bot.command("MAIL FROM:<a@example.net>", /^250 /);
  await bot.command("RCPT TO:<u1@elsewhere.example>", /^554 5\.7\.1 /);
  await bot.command("RCPT TO:<u2@elsewhere.example>", /^421 4\.7\.0 /);
  await bot.waitClosed();
  await server.waitForLine(/event=DICTIONARY client=\[::1\]:\d+ bad_recipients=2 .*action=ban$/);
  const bans = await rowsEventually(server.dbUrl, "SELECT prefix, check_id FROM list_changes WHERE kind = 'ban'");
  assert.deepEqual(bans.map((b) => [b.prefix, b.check_id]), [["::/64", "dictionary"]]);
}, E2E);
