import assert from "node:assert/strict";
import { test } from "../harness.ts";
import { eventually } from "../helpers/eventually.ts";
import { startUpstreamPostfix, type UpstreamPostfix } from "../helpers/postfix.ts";
import { startServer } from "../helpers/server.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { swaks } from "../helpers/swaks.ts";

const RELAY = { timeoutMs: 120_000 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One message from `source` through mxscreen; resolves once Postfix logged it for that client, with its queue id. */
async function deliver(postfix: UpstreamPostfix, port: number, source: string): Promise<string> {
  const result = await swaks([
    "--server",
    `127.0.0.1:${port}`,
    "--local-interface",
    source,
    "--helo",
    "relay-client.example.net",
    "--from",
    "sender@example.net",
    "--to",
    "someone@example.org",
  ]);
  assert.equal(result.code, 0, `${source}: ${result.output}`);
  const queued = /<-  250 2\.0\.0 Ok: queued as ([0-9A-F]+)/.exec(result.output);
  assert.ok(queued, `${source}: Postfix's own queue id is passed back: ${result.output}`);
  const line = await postfix.waitForLine(new RegExp(`${queued[1]}: client=`));
  assert.match(
    line,
    new RegExp(`client=unknown\\[${source.replace(/\./g, "\\.")}\\]`),
    `Postfix knows the message came from ${source}: ${line}`,
  );
  return queued[1];
}

/** TCP connections mxscreen opened to Postfix since log line `from`: smtpd logs each one from its own address. */
const connectionsSince = (postfix: UpstreamPostfix, from: number) =>
  postfix.log.slice(from).filter((line) => /: connect from localhost\[127\.0\.0\.1\]/.test(line)).length;

test(
  "relayed sessions one after another share one warm connection, each client introduced by its own XCLIENT, or by its own XFORWARD (MXSCREEN_UPSTREAM_IDENTITY=xforward)",
  async () => {
    const postfix = await startUpstreamPostfix();
    for (const [pool, expected] of [["4", 1], ["0", 3]] as const) {
      const server = await startServer({
        MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${postfix.port}`,
        MXSCREEN_UPSTREAM_IDENTITY: "xclient",
        MXSCREEN_GREET_WAIT: "300ms",
        MXSCREEN_UPSTREAM_POOL: pool,
      });
      const from = postfix.log.length;
      for (const n of [1, 2, 3]) await deliver(postfix, server.port, `127.0.16.${Number(pool) * 10 + n}`);
      assert.equal(
        connectionsSince(postfix, from),
        expected,
        `MXSCREEN_UPSTREAM_POOL=${pool}: ${expected} connection(s) for three sessions:\n${postfix.log.slice(from).join("\n")}`,
      );
      await server.stop();
    }

    // Sessions in flight swing past the pool: connections that fall idle beyond it wait a moment for the next sessions, then close.
    {
      const server = await startServer({
        MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${postfix.port}`,
        MXSCREEN_UPSTREAM_IDENTITY: "xclient",
        MXSCREEN_GREET_WAIT: "300ms",
        MXSCREEN_UPSTREAM_POOL: "1",
      });
      const from = postfix.log.length;
      const greeted = (n: number) =>
        RawClient.greeted(server.port, `127.0.16.${50 + n}`).then(async (client) => {
          await client.command("EHLO relay-client.example.net", /^250 /m);
          return client;
        });
      // Postfix's log is read as it is written: a session counts once its client= line is in.
      const logged = (ns: number[]) =>
        Promise.all(ns.map((n) => postfix.waitForLine(new RegExp(`: client=unknown\\[127\\.0\\.16\\.${50 + n}\\]`))));
      const relayed = async (client: RawClient) => {
        await client.command("MAIL FROM:<sender@example.net>", /^250 /m);
        await client.command("RCPT TO:<someone@example.org>", /^250 /m);
        await client.command("DATA", /^354 /m);
        await client.command("Subject: pool\r\n\r\nhello\r\n.", /^250 2\.0\.0 Ok: queued as /m, 15_000);
        await client.command("QUIT", /^221 /m);
      };
      // Six clients past the greeting; three relay at once, and the other three right after them.
      const [first, next] = await Promise.all([Promise.all([1, 2, 3].map(greeted)), Promise.all([4, 5, 6].map(greeted))]);
      await Promise.all(first.map(relayed));
      await logged([1, 2, 3]);
      const opened = connectionsSince(postfix, from);
      assert.ok(opened >= 2, `three sessions at once held more than one connection:\n${postfix.log.slice(from).join("\n")}`);
      await Promise.all(next.map(relayed));
      await logged([4, 5, 6]);
      assert.equal(
        connectionsSince(postfix, from),
        opened,
        `the next three sessions took those connections:\n${postfix.log.slice(from).join("\n")}`,
      );
      const quits = () => postfix.log.slice(from).filter((line) => /: disconnect from .* quit=1/.test(line)).length;
      await eventually("the connections beyond the pool closed with QUIT", () => quits() >= opened - 1, 5_000);
      await sleep(300);
      assert.equal(quits(), opened - 1, "the one the pool holds stays open (MXSCREEN_UPSTREAM_IDLE_TIMEOUT, 5 s)");
      await server.stop();
    }

    // With XFORWARD, on the listener that refuses a second XCLIENT: XFORWARD is authorised by the connection's own address.
    const server = await startServer({
      MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${postfix.xclientOncePort}`,
      MXSCREEN_UPSTREAM_IDENTITY: "xforward",
      MXSCREEN_GREET_WAIT: "300ms",
    });
    const from = postfix.log.length;
    for (const n of [1, 2, 3]) {
      const source = `127.0.16.${40 + n}`;
      const id = await deliver(postfix, server.port, source);
      const at = source.replace(/\./g, "\\.");
      await postfix.waitForLine(new RegExp(`${id}: client=localhost\\[127\\.0\\.0\\.1\\], orig_client=unknown\\[${at}\\]`));
      // Postfix's own Received: names the hop it saw (mxscreen); the one below it, mxscreen's, names the client.
      const trace = await postfix.waitForLine(
        new RegExp(`${id}: warning: header Received: from relay-client\\.example\\.net \\(\\[${at}\\]\\)`),
      );
      assert.match(
        trace,
        new RegExp(`from unknown\\[${at}\\]; .* helo=<relay-client\\.example\\.net>`),
        `Postfix logs the client's address and HELO: ${trace}`,
      );
    }
    assert.equal(connectionsSince(postfix, from), 1, `one connection for three clients:\n${postfix.log.slice(from).join("\n")}`);
    assert.equal(server.lines.filter((line) => /UPSTREAM-FAILED|level=warn/.test(line)).length, 0, server.lines.join("\n"));
    await server.stop();
  },
  RELAY,
);

test(
  "an upstream refusing XCLIENT for a second client on one connection: every message still delivered, one warning, then a connection per session",
  async () => {
    const postfix = await startUpstreamPostfix();
    const server = await startServer({
      MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${postfix.xclientOncePort}`,
      MXSCREEN_UPSTREAM_IDENTITY: "xclient",
      MXSCREEN_GREET_WAIT: "300ms",
    });
    const from = postfix.log.length;
    for (const n of [1, 2, 3, 4]) await deliver(postfix, server.port, `127.0.16.${20 + n}`);
    // smtpd counts commands per connection, refused ones too: xclient=0/2 is one accepted (it resets the count) and one refused.
    const refused = postfix.log.slice(from).filter((line) => /disconnect from .* xclient=\d+\/2 /.test(line));
    assert.equal(refused.length, 1, `one second XCLIENT tried, on the second session:\n${postfix.log.slice(from).join("\n")}`);
    assert.equal(connectionsSince(postfix, from), 4, "the refused connection replaced for its session; then one connection per session");
    await server.waitForLine(/level=warn .*refuses XCLIENT for a second client on one connection/);
    assert.equal(server.lines.filter((line) => /refuses XCLIENT for a second client/.test(line)).length, 1, "said once");
    assert.equal(server.lines.filter((line) => /UPSTREAM-FAILED/.test(line)).length, 0, "no client was told to come back");
  },
  RELAY,
);

test(
  "a warm connection is closed with QUIT after MXSCREEN_UPSTREAM_IDLE_TIMEOUT, and one the upstream timed out first is not used",
  async () => {
    // This smtpd drops a client idle for 2 s (smtpd_timeout=2s).
    const postfix = await startUpstreamPostfix();
    const upstream = `smtp://127.0.0.1:${postfix.impatientPort}`;
    const polite = await startServer({ MXSCREEN_UPSTREAM: upstream, MXSCREEN_GREET_WAIT: "300ms", MXSCREEN_UPSTREAM_IDLE_TIMEOUT: "1s" });
    let from = postfix.log.length;
    await deliver(postfix, polite.port, "127.0.16.31");
    const closed = await postfix.waitForLine(/disconnect from unknown\[127\.0\.16\.31\]/, 5_000);
    assert.match(closed, /quit=1/, `we said QUIT before Postfix's timeout: ${closed}`);
    assert.equal(postfix.log.slice(from).filter((line) => /timeout after/.test(line)).length, 0);
    await polite.stop();

    const late = await startServer({ MXSCREEN_UPSTREAM: upstream, MXSCREEN_GREET_WAIT: "300ms", MXSCREEN_UPSTREAM_IDLE_TIMEOUT: "10s" });
    from = postfix.log.length;
    await deliver(postfix, late.port, "127.0.16.32");
    await postfix.waitForLine(/timeout after \S+ from unknown\[127\.0\.16\.32\]/, 5_000);
    await sleep(200);
    await deliver(postfix, late.port, "127.0.16.33");
    assert.equal(connectionsSince(postfix, from), 2, "the timed-out connection was not handed over");
    assert.equal(late.lines.filter((line) => /UPSTREAM-FAILED/.test(line)).length, 0);
  },
  RELAY,
);

// Postfix counts errors and junk commands (EHLO, RSET, NOOP, …) per connection, forgiven only
// by a message it accepts: past smtpd_soft_error_limit each reply waits smtpd_error_sleep_time
// (1 s), at smtpd_hard_error_limit it says 421 and hangs up. XCLIENT clears neither, so on a
// warm connection one client's refused recipients would count against the next clients.
test(
  "a warm connection is not handed on after a refusal: clients whose recipients Postfix refuses never make the next ones wait or fail (both identity modes)",
  async () => {
    const postfix = await startUpstreamPostfix();
    for (const identity of ["xclient", "xforward"]) {
      const server = await startServer({
        MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${postfix.strictPort}`,
        MXSCREEN_UPSTREAM_IDENTITY: identity,
        MXSCREEN_GREET_WAIT: "300ms",
        MXSCREEN_UPSTREAM_POOL: "1",
      });
      const from = postfix.log.length;
      for (let n = 0; n < 4; n++) {
        const client = await RawClient.greeted(server.port, `127.0.17.${identity === "xclient" ? 10 + n : 50 + n}`);
        await client.command("EHLO typo.example.net", /^250 /m);
        await client.command("MAIL FROM:<sender@example.net>", /^250 /m);
        const started = performance.now();
        assert.match(
          await client.command("RCPT TO:<nobody@example.org>", /^\d{3} .*\r\n/m),
          /^550 5\.1\.1 /m,
          `${identity}, session ${n + 1}: ${postfix.log.slice(from).join("\n")}`,
        );
        const waited = performance.now() - started;
        assert.ok(waited < 900, `${identity}, session ${n + 1}: the refusal came after ${Math.round(waited)} ms`);
        await client.command("RSET", /^250 /m);
        // Long enough for the upstream's answer to that RSET, even one held back a second.
        await sleep(1_200);
        await client.command("QUIT", /^221 /m);
      }
      assert.ok(
        !postfix.log.slice(from).some((line) => /too many errors/.test(line)),
        `${identity}: ${postfix.log.slice(from).filter((line) => /too many errors/.test(line)).join("\n")}`,
      );
      await server.stop();
    }
  },
  RELAY,
);

test("a client's RSET and QUIT at once: mxscreen says QUIT to Postfix behind its RSET, never hangs up on it", async () => {
  const postfix = await startUpstreamPostfix();
  const server = await startServer({ MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${postfix.port}`, MXSCREEN_GREET_WAIT: "300ms" });
  const from = postfix.log.length;
  const sessions = 6;
  for (let n = 0; n < sessions; n++) {
    const client = await RawClient.greeted(server.port, `127.0.18.${10 + n}`);
    await client.command("EHLO changed-mind.example.net", /^250 /m);
    await client.command("MAIL FROM:<sender@example.net>", /^250 /m);
    await client.command("RCPT TO:<someone@example.org>", /^250 /m);
    await client.command("RSET", /^250 /m);
    await client.command("QUIT", /^221 /m);
  }
  // Stopped, mxscreen has ended every connection it had: Postfix has logged each one's end.
  await server.stop();
  const connects = () => postfix.log.slice(from).filter((line) => /: connect from /.test(line));
  const disconnects = () => postfix.log.slice(from).filter((line) => /: disconnect from /.test(line));
  await eventually(
    "Postfix logged the end of every connection",
    () => connects().length >= 1 && disconnects().length === connects().length,
    5_000,
  );
  const lost = postfix.log.slice(from).filter((line) => /lost connection/.test(line));
  assert.deepEqual(lost, [], "no connection ended without QUIT");
  assert.ok(disconnects().every((line) => / rset=\d+ quit=1 /.test(line)), disconnects().join("\n"));
}, RELAY);
