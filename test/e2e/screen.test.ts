import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "../harness.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { startServer } from "../helpers/server.ts";
import { spooled } from "../helpers/spooled.ts";
import { swaks } from "../helpers/swaks.ts";
import { query, rowsEventually } from "../helpers/store-rows.ts";

const E2E = { timeoutMs: 30_000 };

for (const workers of ["0", "2"]) {
  test(`swaks waits out the greeting and its message lands in new/ with a Received header (workers=${workers})`, async () => {
    const server = await startServer({ MXSCREEN_WORKERS: workers, MXSCREEN_ACCEPT_DOMAINS: "example.org" });
    const started = Date.now();
    const result = await swaks([
      "--server",
      `127.0.0.1:${server.port}`,
      "--local-interface",
      "127.0.0.11",
      "--helo",
      "client.example.net",
      "--from",
      "sender@example.net",
      "--to",
      "someone@example.org",
      "--header",
      "Subject: e2e spool test",
      "--body",
      "Hello from swaks.\n.leading dot line\n",
    ]);
    assert.equal(result.code, 0, result.output);
    assert.ok(Date.now() - started >= 1000, "the client waited out the 1 s greeting");
    assert.match(result.output, /<-  220-mx\.test\.example ESMTP/);
    assert.match(result.output, /<-  250 2\.0\.0 Ok: queued as \S+/);
    const files = spooled(server.spoolDir);
    assert.equal(files.length, 1);
    assert.deepEqual(readdirSync(join(server.spoolDir, "tmp")), []);
    assert.match(files[0], /^Return-Path: <sender@example\.net>\nDelivered-To: someone@example\.org\n/);
    assert.match(
      files[0],
      /\nReceived: from client\.example\.net \(\[127\.0\.0\.11\]\)\n\tby mx\.test\.example \(mxscreen\) with ESMTP id \S+\n\tfor <someone@example\.org>;/,
    );
    assert.match(files[0], /\nSubject: e2e spool test\n/);
    assert.match(files[0], /\n\.leading dot line\n/);
    assert.doesNotMatch(files[0], /\r/);
    await server.waitForLine(/event=DELIVERED client=127\.0\.0\.11:\d+ queue_id=\S+ from=sender@example\.net to=\S+ size=\d+ action=spool/);
    await server.waitForLine(/event="PASS NEW" client=127\.0\.0\.11:\d+ helo=client\.example\.net .*messages=1 .*action=pass/);
    const refused = await swaks([
      "--server",
      `127.0.0.1:${server.port}`,
      "--local-interface",
      "127.0.0.11",
      "--to",
      "x@elsewhere.example",
      "--from",
      "a@example.net",
    ]);
    assert.match(refused.output, /<\*\* 554 5\.7\.1 <x@elsewhere\.example>: Relay access denied/);
    assert.equal(spooled(server.spoolDir).length, 1);
  }, E2E);
}

test("a pregreet client gets no reply, is logged with its bytes escaped, banned in the store, then refused with 554", async () => {
  const server = await startServer({ MXSCREEN_GREET_WAIT: "2s", MXSCREEN_BAN_TTL: "1h" });
  const bot = await RawClient.open(server.port, "127.0.0.21");
  await bot.until(/^220-mx\.test\.example ESMTP\r\n$/);
  bot.write('EHLO bot\r\nevent="PASS NEW" \x01\r\n');
  await bot.waitClosed(3000);
  assert.equal(bot.text, "220-mx.test.example ESMTP\r\n", "nothing but the teaser");
  const line = await server.waitForLine(/event=PREGREET client=127\.0\.0\.21:/);
  assert.match(line, /after_ms=\d+ sent="EHLO bot\\r\\nevent=\\"PASS NEW\\" \\x01\\r\\n" bytes=30 duration_ms=\d+ action=ban$/);
  const afterMs = Number(/after_ms=(\d+)/.exec(line)![1]);
  assert.ok(afterMs < 1500, `after_ms=${afterMs} measured from connect`);
  const bans = await rowsEventually(server.dbUrl, "SELECT * FROM list_changes WHERE kind = 'ban'");
  assert.equal(bans.length, 1);
  assert.equal(bans[0].prefix, "127.0.0.21/32");
  assert.equal(bans[0].node, "node-a");
  assert.equal(bans[0].check_id, "pregreet");
  const ttl = Number(bans[0].expires_at) - Number(bans[0].created_at);
  assert.equal(ttl, 3_600_000);
  assert.match(String(bans[0].evidence), /EHLO bot/);
  const events = await rowsEventually(server.dbUrl, "SELECT event, action FROM events WHERE client_ip = '127.0.0.21'");
  assert.deepEqual(events.map((e) => [e.event, e.action]), [["PREGREET", "ban"]]);

  const again = await RawClient.open(server.port, "127.0.0.21");
  await again.waitClosed(3000);
  assert.match(again.text, /^554 5\.7\.1 mx\.test\.example Service unavailable; client refused by policy\r\n$/);
  await server.waitForLine(/event=BANNED client=127\.0\.0\.21:\d+ ban=127\.0\.0\.21\/32 reason=PREGREET by=node-a .*action=reject/);

  const other = await RawClient.open(server.port, "127.0.0.22");
  await other.until(/^220-/);
  assert.ok(!other.isClosed, "another address is not affected");
}, E2E);

test("MXSCREEN_BAN_ACTION=drop closes a banned client's connection without a word", async () => {
  const server = await startServer({ MXSCREEN_BAN_ACTION: "drop" });
  const bot = await RawClient.open(server.port, "127.0.0.23");
  await bot.until(/^220-/);
  bot.write("HELO now\r\n");
  await bot.waitClosed();
  await server.waitForLine(/event=PREGREET client=127\.0\.0\.23:/);
  const again = await RawClient.open(server.port, "127.0.0.23");
  await again.waitClosed(3000);
  assert.equal(again.text, "");
  await server.waitForLine(/event=BANNED client=127\.0\.0\.23:\d+ .*action=drop/);
}, E2E);

test("a polite client is remembered (PASS NEW) and next time greeted at once (PASS OLD) until PASS_TTL ends", async () => {
  const server = await startServer({ MXSCREEN_GREET_WAIT: "1500ms", MXSCREEN_PASS_TTL: "4s" });
  const polite = async () => {
    const c = await RawClient.open(server.port, "127.0.0.31");
    await c.until(/^220 mx\.test\.example ESMTP\r\n/m);
    const greetedAfter = c.arrival(/^220 /m)!;
    c.write("EHLO polite.example\r\n");
    await c.until(/250 ENHANCEDSTATUSCODES\r\n$/);
    c.write("QUIT\r\n");
    await c.until(/221 2\.0\.0 Bye\r\n$/);
    await c.waitClosed();
    return { greetedAfter, teaser: /^220-/.test(c.text) };
  };
  const first = await polite();
  assert.ok(first.teaser && first.greetedAfter >= 1400, `first greeting after ${first.greetedAfter} ms`);
  await server.waitForLine(/event="PASS NEW" client=127\.0\.0\.31:/);
  const passes = await rowsEventually(
    server.dbUrl,
    "SELECT expires_at - created_at AS ttl FROM list_changes WHERE kind = 'pass' AND prefix = '127.0.0.31/32'",
  );
  assert.equal(Number(passes[0]?.ttl), 4000);
  const second = await polite();
  assert.ok(!second.teaser && second.greetedAfter < 500, `second greeting after ${second.greetedAfter} ms`);
  await server.waitForLine(/event="PASS OLD" client=127\.0\.0\.31:/);
  await new Promise((r) => setTimeout(r, 4000 - second.greetedAfter));
  const third = await polite();
  assert.ok(third.teaser && third.greetedAfter >= 1400, "the pass expired: the greet wait is back");
}, E2E);

test("a session that goes quiet gets 421 4.4.2 at the command timeout and is logged TIMEOUT, not passed", async () => {
  const server = await startServer({ MXSCREEN_GREET_WAIT: "300ms", MXSCREEN_COMMAND_TIMEOUT: "1s" });
  const c = await RawClient.open(server.port, "127.0.0.41");
  await c.until(/^220 /m);
  c.write("HELO idle.example\r\n");
  await c.until(/^250 /m);
  await c.waitClosed(4000);
  assert.match(c.text, /421 4\.4\.2 mx\.test\.example Error: timeout exceeded\r\n$/);
  await server.waitForLine(/event=TIMEOUT client=127\.0\.0\.41:\d+ helo=idle\.example .*action=close/);
  await rowsEventually(server.dbUrl, "SELECT * FROM events WHERE event = 'TIMEOUT'");
  // Admitted to the pass list when it waited out the greeting, taken back when it went quiet.
  const passes = await query(server.dbUrl, "SELECT op FROM list_changes WHERE kind = 'pass' ORDER BY seq");
  assert.equal(passes.at(-1)?.op, "remove");
}, E2E);

test("MXSCREEN_LOG=json writes one JSON object per line with the same fields", async () => {
  const server = await startServer({ MXSCREEN_LOG: "json", MXSCREEN_GREET_WAIT: "2s" });
  const bot = await RawClient.open(server.port, "127.0.0.51");
  await bot.until(/^220-/);
  bot.write("\r\n");
  await bot.waitClosed();
  const line = await server.waitForLine(/"event":"PREGREET"/);
  const entry = JSON.parse(line);
  assert.equal(entry.node, "node-a");
  assert.match(entry.client, /^127\.0\.0\.51:\d+$/);
  assert.equal(entry.sent, "\r\n", "escaped once, by JSON: the bytes the client sent");
  assert.equal(entry.level, "info");
  assert.equal(entry.action, "ban");
}, E2E);

test("SIGTERM: no new clients, a message in flight is finished and spooled, then 421 and a clean exit", async () => {
  const server = await startServer({ MXSCREEN_GREET_WAIT: "300ms", MXSCREEN_WORKERS: "1" });
  const c = await RawClient.open(server.port, "127.0.0.61");
  await c.until(/^220 /m);
  await c.command("HELO busy.example", /^250 /);
  await c.command("MAIL FROM:<a@example.net>", /^250 /);
  await c.command("RCPT TO:<b@example.org>", /^250 /);
  await c.command("DATA", /^354 /);
  c.write("Subject: in flight\r\n\r\nfirst half\r\n");
  const waiting = await RawClient.open(server.port, "127.0.0.62");
  await waiting.until(/^220-/);
  const exit = server.stop();
  await waiting.waitClosed(3000);
  assert.match(waiting.text, /421 4\.3\.2 /);
  await server.waitForLine(/msg=stopping signal=SIGTERM/);
  c.write("second half\r\n.\r\n");
  await c.until(/250 2\.0\.0 Ok: queued as \S+\r\n421 4\.3\.2 [^\n]*\r\n$/);
  assert.equal(await exit, 0, `exit status; stderr: ${server.stderr.join("")}`);
  const files = spooled(server.spoolDir);
  assert.equal(files.length, 1);
  assert.match(files[0], /first half\nsecond half\n$/);
  assert.ok(server.lines.some((l) => /msg=stopped/.test(l)));
}, E2E);

test("IPv6: an early talker on [::1] is logged as [::1]:port and banned per /64", async () => {
  const server = await startServer({ MXSCREEN_GREET_WAIT: "2s" }, { listen: (port) => `[::1]:${port}` });
  const bot = await RawClient.open(server.port, "::1");
  await bot.until(/^220-/);
  bot.write("EHLO v6bot\r\n");
  await bot.waitClosed();
  await server.waitForLine(/event=PREGREET client=\[::1\]:\d+ /);
  const bans = await rowsEventually(server.dbUrl, "SELECT prefix FROM list_changes WHERE kind = 'ban'");
  assert.deepEqual(bans.map((b) => b.prefix), ["::/64"]);
  const again = await RawClient.open(server.port, "::1");
  await again.waitClosed(3000);
  assert.match(again.text, /^554 5\.7\.1 /);
}, E2E);
