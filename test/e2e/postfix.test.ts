import assert from "node:assert/strict";
import { test } from "../harness.ts";
import { startPostfix } from "../helpers/postfix.ts";
import { startServer } from "../helpers/server.ts";
import { spooled } from "../helpers/spooled.ts";
import { swaks } from "../helpers/swaks.ts";

for (const pipelining of ["false", "true"]) {
  test(
    `Postfix's smtp client relays through mxscreen's default checks and stutter, and its mail is spooled (MXSCREEN_PIPELINING=${pipelining})`,
    async () => {
      const server = await startServer({
        MXSCREEN_GREET_WAIT: "500ms",
        MXSCREEN_ACCEPT_DOMAINS: "example.org",
        MXSCREEN_PIPELINING: pipelining,
        MXSCREEN_STUTTER: "true",
        MXSCREEN_STUTTER_DELAY: "100ms",
      });
      const postfix = await startPostfix(server.port, "127.0.8.11", "sender.example.net");
      const handed = await swaks([
        "--server",
        `127.0.0.1:${postfix.port}`,
        "--helo",
        "localhost.example",
        "--from",
        "someone@example.net",
        "--to",
        "user@example.org",
        "--header",
        "Subject: through Postfix",
      ]);
      assert.equal(handed.code, 0, handed.output);
      const sent = await postfix.waitForLine(
        /postfix\/smtp\[\d+\]: \w+: to=<user@example\.org>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=(sent|deferred|bounced)/,
        20_000,
      );
      assert.match(sent, /status=sent \(250 2\.0\.0 Ok: queued as \w+\)/);
      // paced=: the replies it had to read to their stuttered end, first visit as it is.
      await server.waitForLine(/event="PASS NEW" client=127\.0\.8\.11:\d+ helo=sender\.example\.net .*messages=1 .*paced=[1-9]/);
      const files = spooled(server.spoolDir);
      assert.equal(files.length, 1);
      assert.match(files[0], /\nSubject: through Postfix\n/);
    },
    { timeoutMs: 45_000 },
  );
}
