import assert from "node:assert/strict";
import { test } from "../harness.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { startServer } from "../helpers/server.ts";
import { spooled } from "../helpers/spooled.ts";
import { rowsEventually } from "../helpers/store-rows.ts";
import { makeCertificate } from "../helpers/tls.ts";

const E2E = { timeoutMs: 30_000 };
const FAST = { MXSCREEN_GREET_WAIT: "300ms", MXSCREEN_ACCEPT_DOMAINS: "example.org" };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const workers of ["0", "1"]) {
  test(
    `a client dripping a byte every 300 ms is cut with 421 4.4.2 at the 2s command timeout, not held for ever (workers=${workers})`,
    async () => {
      const server = await startServer({ ...FAST, MXSCREEN_COMMAND_TIMEOUT: "2s", MXSCREEN_WORKERS: workers });
      const dripper = await RawClient.greeted(server.port, "127.0.3.11");
      const started = Date.now();
      // 40 bytes at 300 ms is 12 s: six command timeouts, each restarted by the byte before under the old rule.
      for (const byte of "NOOP this line never ends within the deadline") {
        if (dripper.isClosed) break;
        dripper.write(byte);
        await sleep(300);
      }
      await dripper.waitClosed(5_000);
      const took = Date.now() - started;
      assert.match(dripper.text, /\r\n421 4\.4\.2 mx\.test\.example Error: timeout exceeded\r\n$/);
      assert.ok(took >= 1_900 && took < 10_000, `cut after ${took} ms`);
      await server.waitForLine(/event=TIMEOUT client=127\.0\.3\.11:\d+ .*action=close/);
    },
    E2E,
  );
}

test(
  "an over-long command line gets 500 5.5.2 before its LF ever comes, and a client streaming on without one is closed with 421",
  async () => {
    const server = await startServer(FAST);
    const patient = await RawClient.greeted(server.port, "127.0.3.21");
    patient.write(`EHLO ${"a".repeat(1200)}`);
    await patient.until(/\r\n500 5\.5\.2 Error: line too long \(limit 1000 octets\)\r\n$/);
    patient.write("aaaa\r\n");
    await patient.command("NOOP", /^250 2\.0\.0 Ok\r\n$/);

    const streamer = await RawClient.greeted(server.port, "127.0.3.22");
    streamer.write(`NOOP ${"b".repeat(1200)}`);
    await streamer.until(/\r\n500 5\.5\.2 /);
    for (let i = 0; i < 10 && !streamer.isClosed; i++) {
      streamer.write("b".repeat(1000));
      await sleep(50);
    }
    await streamer.waitClosed();
    assert.match(
      streamer.text,
      /\r\n500 5\.5\.2 [^\n]*\n421 4\.7\.0 mx\.test\.example Error: command line far past the length limit; closing\r\n$/,
    );
    await server.waitForLine(/event=ERROR-LIMIT client=127\.0\.3\.22:\d+ .*action=close/);
  },
  E2E,
);

test(
  "inside DATA, 8 MB without a LF are discarded as they come and the message is refused at the final dot; the session goes on",
  async () => {
    const server = await startServer(FAST);
    const c = await RawClient.greeted(server.port, "127.0.3.23");
    await c.command("HELO c.example", /^250 /);
    await c.command("MAIL FROM:<a@example.net>", /^250 /);
    await c.command("RCPT TO:<b@example.org>", /^250 /);
    await c.command("DATA", /^354 /);
    const from = c.text.length;
    const chunk = "e".repeat(64 * 1024);
    for (let i = 0; i < 128; i++) {
      if (!c.socket.write(chunk)) await new Promise((resolve) => c.socket.once("drain", resolve));
    }
    c.write("\r\n.\r\n");
    await c.until(/^500 5\.5\.2 Error: line too long \(limit 1000 octets, RFC 5321 4\.5\.3\.1\.6\)\r\n$/, 20_000, from);
    await c.command("QUIT", /^221 /);
    assert.equal(spooled(server.spoolDir).length, 0);
  },
  E2E,
);

test(
  "a bare CR in message content (<CR>.<CR> smuggling) refuses the message by default, and becomes CRLF with MXSCREEN_BARE_CR=normalize",
  async () => {
    const smuggling = "Subject: one\r\n\r\ntext\r.\r\nMAIL FROM:<smuggled@example.net>\r\n.\r\n";
    for (
      const [bareCr, client, outcome] of [["reject", "127.0.3.31", /^550 5\.5\.2 Error: bare <CR> received in message content\r\n$/], [
        "normalize",
        "127.0.3.32",
        /^250 2\.0\.0 Ok: queued as \S+\r\n$/,
      ]] as const
    ) {
      const server = await startServer({ ...FAST, MXSCREEN_BARE_CR: bareCr });
      const c = await RawClient.greeted(server.port, client);
      await c.command("HELO c.example", /^250 /);
      await c.command("MAIL FROM:<a@example.net>", /^250 /);
      await c.command("RCPT TO:<b@example.org>", /^250 /);
      await c.command("DATA", /^354 /);
      const from = c.text.length;
      c.write(smuggling);
      await c.until(outcome, 5_000, from);
      await c.command("QUIT", /^221 /);
      if (bareCr === "reject") {
        assert.equal(spooled(server.spoolDir).length, 0);
      } else {
        // The 250 comes once the spool has the message.
        const [message, ...more] = spooled(server.spoolDir);
        assert.equal(more.length, 0);
        // The spool keeps LF line ends (maildir): the bare CR became a line end like any other.
        assert.match(message, /\ntext\n\.\nMAIL FROM:<smuggled@example\.net>\n$/);
        assert.doesNotMatch(message, /\r/);
      }
    }
  },
  E2E,
);

test("a client whose TLS handshake fails after STARTTLS is logged TLS-FAILED and closed, not PASS NEW", async () => {
  const { cert, key } = makeCertificate("mx.test.example");
  const server = await startServer({ ...FAST, MXSCREEN_TLS_CERT: cert, MXSCREEN_TLS_KEY: key });
  const c = await RawClient.greeted(server.port, "127.0.3.41");
  await c.command("EHLO c.example", /250 ENHANCEDSTATUSCODES\r\n$/);
  await c.command("STARTTLS", /^220 /);
  c.write("this is no TLS ClientHello\r\n".repeat(20));
  await c.waitClosed(10_000);
  const verdict = await server.waitForLine(/event=TLS-FAILED client=127\.0\.3\.41:\d+ .*end=tls-failed .*action=close$/);
  assert.match(verdict, /helo=c\.example/);
  const events = await rowsEventually(server.dbUrl, "SELECT check_id, action FROM events WHERE event = 'TLS-FAILED'");
  assert.deepEqual(events.map((e) => [e.check_id, e.action]), [["tls-failed", "close"]]);
  assert.ok(!server.lines.some((line) => /event="PASS NEW" client=127\.0\.3\.41:/.test(line)), server.lines.join("\n"));
}, E2E);
