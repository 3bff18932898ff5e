import assert from "node:assert/strict";
import { test } from "../harness.ts";
import { startOpenSmtpdSender, startUpstreamOpenSmtpd } from "../helpers/opensmtpd.ts";
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
  for (const pipelining of ["false", "true"]) {
    test(
      `OpenSMTPD as the sender: what it relays is spooled once, byte for byte (MXSCREEN_PIPELINING=${pipelining}, MXSCREEN_WORKERS=${workers})`,
      async () => {
        const server = await startSpooling(pipelining, workers);
        const source = pipelining === "true" ? "127.0.16.2" : "127.0.16.1";
        const smtpd = await startOpenSmtpdSender(server.port, source, "sender.opensmtpd.test");
        const handed = await sendTricky(smtpd.port, "127.0.0.1", "user@example.org", "through OpenSMTPD");
        assert.equal(handed.code, 0, handed.output);
        const delivery = await smtpd.waitForLine(
          / mta delivery evpid=\w+ from=<sender@example\.net> to=<user@example\.org> .*result="?\w+/,
          20_000,
        );
        // A retry now of anything OpenSMTPD holds: a message it took for undelivered would go again.
        await smtpd.scheduleAll();
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const context = () => logs(["OpenSMTPD", smtpd.log], ["mxscreen", server.lines], ["mxscreen stderr", server.stderr]);
        assert.match(
          delivery,
          new RegExp(
            String.raw` source="${source.replace(/\./g, "\\.")}" relay="127\.0\.0\.1 .*result="Ok" stat="250 2\.0\.0 Ok: queued as \w+"`,
          ),
          context(),
        );
        assert.deepEqual(smtpd.log.filter((line) => / mta delivery .*result="(TempFail|PermFail)"/.test(line)), [], context());
        // Not the session's end: OpenSMTPD holds its connection open for more mail a while.
        await server.waitForLine(new RegExp(`event=DELIVERED client=${source.replace(/\./g, "\\.")}:\\d+ queue_id=\\w+ .*action=spool`));
        checkSpooledOnce(server, "through OpenSMTPD", context);
      },
      INTEROP,
    );
  }
}

test(
  "OpenSMTPD behind mxscreen (identity proxy with proxy-v2, then none): the body arrives byte for byte, and OpenSMTPD sees the original client only with the header",
  async () => {
    const smtpd = await startUpstreamOpenSmtpd();
    const cases = [
      { identity: "proxy", port: smtpd.proxyPort, source: "127.0.16.11", address: "127.0.16.11" },
      { identity: "none", port: smtpd.port, source: "127.0.16.12", address: "127.0.0.1" },
    ] as const;
    for (const c of cases) {
      const server = await startRelay(c.port, c.identity);
      const sent = await sendTricky(server.port, c.source, "someone@example.org", `identity ${c.identity}`);
      const context = () =>
        logs(["swaks", [sent.output]], ["OpenSMTPD", smtpd.log], ["mxscreen", server.lines], ["mxscreen stderr", server.stderr]);
      assert.equal(sent.code, 0, `${c.identity}${context()}`);
      const queued = /<-  250 2\.0\.0 (\w+) Message accepted for delivery/.exec(sent.output);
      assert.ok(queued, `${c.identity}: OpenSMTPD's own message id is passed back${context()}`);
      const session = /^(\w+) smtp message /.exec(await smtpd.waitForLine(new RegExp(`^\\w+ smtp message msgid=${queued[1]} `)))![1];
      const connected = await smtpd.waitForLine(new RegExp(`^${session} smtp connected `));
      assert.match(connected, new RegExp(` address=${c.address.replace(/\./g, "\\.")} `), `${c.identity}${context()}`);
      await smtpd.waitForLine(new RegExp(` mda delivery evpid=${queued[1]}\\w* .*result=Ok`));
      const stored = smtpd.delivered().find((m) => m.includes(`\nSubject: identity ${c.identity}\n`));
      assert.ok(stored, `${c.identity}: in OpenSMTPD's maildir${context()}`);
      assert.equal(bodyOf(stored), TRICKY_BODY, c.identity);
      await server.stop();
    }
  },
  INTEROP,
);

test("OpenSMTPD's 550 for an unknown user is passed back as the client's answer, and the session goes on", async () => {
  const smtpd = await startUpstreamOpenSmtpd();
  const server = await startRelay(smtpd.proxyPort, "proxy");
  await checkUnknownUserPassedBack(
    server,
    "127.0.16.21",
    /^550 Invalid recipient: <nobody@example\.org>\r\n$/,
    /^250 2\.1\.5 [^\r\n]*\r\n$/,
    () =>
      smtpd.waitForLine(
        / smtp failed-command command="RCPT TO:<nobody@example\.org>" result="550 Invalid recipient: <nobody@example\.org>"/,
      ),
  );
}, INTEROP);

for (const workers of WORKERS) {
  test(
    `OpenSMTPD stopped between RCPT and DATA: the client gets a 4xx, never a 354 or 250, and mxscreen goes on serving (MXSCREEN_WORKERS=${workers})`,
    async () => {
      const smtpd = await startUpstreamOpenSmtpd();
      const server = await startRelay(smtpd.port, "none", workers);
      await checkDataAfterUpstreamStopped(server, "127.0.19", /^250 2\.1\.5 [^\r\n]*\r\n$/, () => smtpd.stop(), [
        "OpenSMTPD",
        smtpd.log,
      ]);
    },
    INTEROP,
  );
}
