import assert from "node:assert/strict";
import { test } from "../harness.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { startServer } from "../helpers/server.ts";
import { swaks } from "../helpers/swaks.ts";
import { proxyV2 } from "../helpers/proxy.ts";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const E2E = { timeoutMs: 30_000 };

test("behind a trusted proxy (PROXY v1 and v2) the client in the header is greeted, screened, banned and named in Received", async () => {
  const server = await startServer({ MXSCREEN_TRUSTED_PROXIES: "127.0.11.0/24", MXSCREEN_GREET_WAIT: "1s" });
  const v1 = await RawClient.open(server.port, "127.0.11.1");
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(v1.text, "", "nothing is said before the header");
  v1.write("PROXY TCP4 192.0.2.71 127.0.0.1 40001 25\r\n");
  await v1.until(/^220-/);
  v1.write("EHLO talks-first\r\n");
  await v1.waitClosed();
  await server.waitForLine(/event=PREGREET client=192\.0\.2\.71:40001 .* via=127\.0\.11\.1:\d+ action=ban$/);

  const again = await RawClient.open(server.port, "127.0.11.1");
  again.write(proxyV2([192, 0, 2, 71], 40002));
  await again.waitClosed();
  assert.match(again.text, /^554 5\.7\.1 /, "the header's client is banned, not the proxy");
  const other = await RawClient.open(server.port, "127.0.11.1");
  other.write(proxyV2([192, 0, 2, 72], 40003));
  await other.until(/^220-/);

  const polite = await RawClient.open(server.port, "127.0.11.2");
  polite.write("PROXY TCP4 198.51.100.80 127.0.0.1 40004 25\r\n");
  await polite.until(/^220 /m);
  await polite.command("HELO relay-test.example", /250 [^\n]*\r\n$/);
  await polite.command("MAIL FROM:<a@example.net>", /250 2\.1\.0 Ok\r\n$/);
  await polite.command("RCPT TO:<b@example.org>", /250 2\.1\.5 Ok\r\n$/);
  await polite.command("DATA", /354 [^\n]*\r\n$/);
  await polite.command("Subject: via proxy\r\n\r\nhi\r\n.", /250 2\.0\.0 Ok: queued as \S+\r\n$/);
  await polite.command("QUIT", /221 2\.0\.0 Bye\r\n$/);
  const file = readdirSync(join(server.spoolDir, "new"))[0];
  assert.match(readFileSync(join(server.spoolDir, "new", file), "utf8"), /^Received: from relay-test\.example \(\[198\.51\.100\.80\]\)$/m);
}, E2E);

test(
  "a malformed header from a trusted proxy closes with a PROXY log line; a header from anyone else is refused without a ban",
  async () => {
    const server = await startServer({ MXSCREEN_TRUSTED_PROXIES: "127.0.12.1", MXSCREEN_GREET_WAIT: "1s" });
    const bad = await RawClient.open(server.port, "127.0.12.1");
    bad.write("PROXY TCP4 nonsense\r\n");
    await bad.waitClosed();
    assert.equal(bad.text, "");
    await server.waitForLine(/event=PROXY client=127\.0\.12\.1:\d+ reason="PROXY v1 header malformed: .*" .*action=close$/);

    const untrusted = await RawClient.open(server.port, "127.0.12.2");
    await untrusted.until(/^220-/);
    untrusted.write("PROXY TCP4 192.0.2.9 127.0.0.1 1 25\r\n");
    await untrusted.waitClosed();
    await server.waitForLine(
      /event=PROXY client=127\.0\.12\.2:\d+ reason="PROXY header from an address not in MXSCREEN_TRUSTED_PROXIES" sent=/,
    );
    const next = await RawClient.open(server.port, "127.0.12.2");
    await next.until(/^220-/, 3000);
    assert.ok(!/^554/.test(next.text), "a misconfigured proxy is not banned");

    const result = await swaks([
      "--server",
      `127.0.0.1:${server.port}`,
      "--local-interface",
      "127.0.12.3",
      "--helo",
      "sender.example.net",
      "--to",
      "a@example.org",
      "--from",
      "b@example.net",
    ]);
    assert.equal(result.code, 0, "clients not behind the proxy are unaffected");
  },
  E2E,
);
