import assert from "node:assert/strict";
import { test } from "../harness.ts";
import { eventually } from "../helpers/eventually.ts";
import { startUpstreamPostfix } from "../helpers/postfix.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { startServer } from "../helpers/server.ts";
import { spooled } from "../helpers/spooled.ts";

/**
 * Exim with PIPELINING offered sends `.`, QUIT and then shuts down its sending side. A server
 * that takes the FIN for "client gone" never sends the 250, and Exim sends the message again on
 * every retry. Every command received must be answered, then the connection closed.
 */
const MODES = [
  { name: "inline", workers: "0" },
  { name: "workers", workers: "2" },
];

async function halfClosingClient(port: number, source: string, pipelining: boolean, quit: boolean): Promise<RawClient> {
  const c = await RawClient.greeted(port, source);
  await c.command("EHLO client.example.net", /^250 /m);
  if (pipelining) {
    c.write("MAIL FROM:<sender@example.net>\r\nRCPT TO:<someone@example.org>\r\nDATA\r\n");
    await c.until(/^354 /m);
  } else {
    await c.command("MAIL FROM:<sender@example.net>", /^250 /m);
    await c.command("RCPT TO:<someone@example.org>", /^250 /m);
    await c.command("DATA", /^354 /m);
  }
  c.write(`Subject: half-close\r\n\r\nbody\r\n.\r\n${quit ? "QUIT\r\n" : ""}`);
  c.socket.end();
  await c.waitClosed(10_000);
  return c;
}

for (const mode of MODES) {
  test(`spool, ${mode.name}: a client that sends . (and QUIT) then half-closes gets its 250 once, then the close`, async () => {
    const server = await startServer({ MXSCREEN_GREET_WAIT: "200ms", MXSCREEN_WORKERS: mode.workers, MXSCREEN_PIPELINING: "true" });
    const withQuit = await halfClosingClient(server.port, "127.0.21.1", true, true);
    assert.match(withQuit.text, /\r\n250 2\.0\.0 Ok: queued as \S+\r\n221 2\.0\.0 Bye\r\n$/);
    const dotOnly = await halfClosingClient(server.port, "127.0.21.2", false, false);
    assert.match(dotOnly.text, /\r\n250 2\.0\.0 Ok: queued as \S+\r\n$/);
    assert.equal(spooled(server.spoolDir).length, 2);
    await server.waitForLine(/event="PASS NEW" client=127\.0\.21\.2:\d+ .*end=client-closed/);
  }, { timeoutMs: 30_000 });

  test(
    `relay to Postfix, ${mode.name}: . and QUIT then a half-close: the upstream's 250 reaches the client, and Postfix has the message once`,
    async () => {
      const postfix = await startUpstreamPostfix();
      const server = await startServer({
        MXSCREEN_GREET_WAIT: "200ms",
        MXSCREEN_WORKERS: mode.workers,
        MXSCREEN_PIPELINING: "true",
        MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${postfix.port}`,
      });
      const c = await halfClosingClient(server.port, "127.0.21.3", true, true);
      const queued = /\r\n250 2\.0\.0 Ok: queued as ([0-9A-F]+)\r\n221 /.exec(c.text);
      assert.ok(queued, c.text);
      await postfix.waitForLine(new RegExp(`${queued[1]}: to=<someone@example\\.org>.*status=sent`));
      await eventually("one message at Postfix", () => postfix.log.filter((line) => / client=/.test(line)).length === 1);
    },
    { timeoutMs: 60_000 },
  );
}

test("a client that half-closes during the greet wait without a word is a HANGUP, and its socket is closed", async () => {
  const server = await startServer({ MXSCREEN_GREET_WAIT: "3s" });
  const c = await RawClient.open(server.port, "127.0.21.4");
  await c.until(/^220-/);
  c.socket.end();
  await c.waitClosed(2_000);
  await server.waitForLine(/event=HANGUP client=127\.0\.21\.4:\d+/);
}, { timeoutMs: 15_000 });
