import assert from "node:assert/strict";
import { test } from "../harness.ts";
import { startEximSender, startUpstreamExim } from "../helpers/exim.ts";
import {
  bodyOf,
  checkDataAfterUpstreamStopped,
  checkSpooledOnce,
  checkUnknownUserPassedBack,
  logs,
  sendTricky,
  startRelay,
  startSpooling,
  TRICKY_BODY,
  WORKERS,
} from "../helpers/private-mta.ts";

const INTEROP = { timeoutMs: 45_000 };

for (const workers of WORKERS) {
  for (const [pipelining, source] of [["false", "127.0.15.1"], ["true", "127.0.15.2"]]) {
    test(
      `Exim as the sender: its message is spooled byte for byte, Exim hears 250 once and its queue is empty (MXSCREEN_PIPELINING=${pipelining}, MXSCREEN_WORKERS=${workers})`,
      async () => {
        const server = await startSpooling(pipelining, workers);
        const exim = startEximSender(server.port, source, "sender.exim.test");
        await exim.submit("sender@example.net", "user@example.org", `Subject: through Exim\n\n${TRICKY_BODY}`);
        const attempt = await exim.waitForLine(/ (=>|==|\*\*) user@example\.org /);
        // A forced queue run: a message Exim deferred above, although mxscreen took it, would go again now.
        await exim.runQueue();
        const context = () => logs(["Exim mainlog", exim.log], ["mxscreen", server.lines], ["mxscreen stderr", server.stderr]);
        const from = source.replace(/\./g, "\\.");
        assert.match(
          attempt,
          new RegExp(
            String
              // K: Exim sent the message in BDAT chunks (RFC 3030), which mxscreen offers with the spool.
              .raw`=> user@example\.org R=mxscreen T=mxscreen H=127\.0\.0\.1 \[127\.0\.0\.1\] I=\[${from}\] K C="250 2\.0\.0 Ok: queued as \w+"$`,
          ),
          context(),
        );
        assert.ok(exim.log.some((line) => / Completed$/.test(line)), context());
        assert.deepEqual(exim.log.filter((line) => / (==|\*\*) /.test(line)), [], context());
        assert.equal(await exim.queued(), 0, context());
        checkSpooledOnce(server, "through Exim", context);
        // paced=: the replies Exim read to their stuttered end without tripping the pipelining check.
        await server.waitForLine(new RegExp(`event="PASS NEW" client=${from}:\\d+ .*paced=[1-9]`));
      },
      INTEROP,
    );
  }
}

test(
  "Exim behind mxscreen (identity proxy, then none): the body arrives byte for byte, and Exim logs the original client only with the PROXY header",
  async () => {
    const exim = await startUpstreamExim();
    const cases = [
      {
        identity: "proxy",
        port: exim.proxyPort,
        source: "127.0.15.11",
        client: / H=\(mx\.test\.example\) \[127\.0\.15\.11\]:\d+ .* PRX=127\.0\.0\.1 /,
      },
      { identity: "none", port: exim.port, source: "127.0.15.12", client: / H=\(mx\.test\.example\) \[127\.0\.0\.1\]:\d+ (?!.*PRX=)/ },
    ] as const;
    for (const c of cases) {
      const server = await startRelay(c.port, c.identity);
      const sent = await sendTricky(server.port, c.source, "someone@example.org", `identity ${c.identity}`);
      assert.equal(sent.code, 0, `${c.identity}: ${sent.output}${logs(["Exim mainlog", exim.log], ["mxscreen", server.lines])}`);
      const queued = /<-  250 OK id=(\S+)/.exec(sent.output);
      assert.ok(queued, `${c.identity}: Exim's own queue id is passed back: ${sent.output}`);
      const received = await exim.waitForLine(new RegExp(`${queued[1]} <= sender@example\\.net `));
      assert.match(received, c.client, `${c.identity}: ${received}`);
      await exim.waitForLine(new RegExp(`${queued[1]} Completed`));
      const stored = exim.delivered().find((m) => m.includes(`\nSubject: identity ${c.identity}\n`));
      assert.ok(stored, `${c.identity}: in Exim's maildir`);
      assert.equal(bodyOf(stored), TRICKY_BODY, c.identity);
      await server.stop();
    }
  },
  INTEROP,
);

test("Exim's 550 for an unknown user is passed back as the client's answer, and the session goes on", async () => {
  const exim = await startUpstreamExim();
  const server = await startRelay(exim.proxyPort, "proxy");
  await checkUnknownUserPassedBack(server, "127.0.15.21", /^550 Unrouteable address\r\n$/, /^250 Accepted\r\n$/, () =>
    exim.waitForLine(
      / H=\(mx\.test\.example\) \[127\.0\.15\.21\]:\d+ .*F=<sender@example\.net> rejected RCPT <nobody@example\.org>: Unrouteable address/,
    ));
}, INTEROP);

for (const workers of WORKERS) {
  for (const [signal, net] of [["SIGTERM", "127.0.17"], ["SIGKILL", "127.0.18"]] as const) {
    test(
      `Exim stopped (${signal}) between RCPT and DATA: the client gets a 4xx, never a 354 or 250, and mxscreen goes on serving (MXSCREEN_WORKERS=${workers})`,
      async () => {
        const exim = await startUpstreamExim();
        const server = await startRelay(exim.port, "none", workers);
        await checkDataAfterUpstreamStopped(server, net, /^250 Accepted\r\n$/, async () => {
          await exim.sessionPid("127.0.0.1");
          await exim.stop(signal);
          // On SIGTERM the session says 421 before it closes: wait for that to be done too.
          if (signal === "SIGTERM") await exim.waitForLine(/ closed after SIGTERM$/);
        }, ["Exim mainlog", exim.log]);
      },
      INTEROP,
    );
  }
}
