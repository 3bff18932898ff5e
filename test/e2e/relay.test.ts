import assert from "node:assert/strict";
import { readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "../harness.ts";
import { startUpstreamPostfix } from "../helpers/postfix.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { startServer, tempDir } from "../helpers/server.ts";
import { swaks } from "../helpers/swaks.ts";

const RELAY = { timeoutMs: 90_000 };

function send(port: number, source: string, to: string, extra: string[] = []) {
  return swaks([
    "--server",
    `127.0.0.1:${port}`,
    "--local-interface",
    source,
    "--helo",
    "relay-client.example.net",
    "--from",
    "sender@example.net",
    "--to",
    to,
    ...extra,
  ]);
}

test("relayed to a real Postfix with each identity mode: the client's 250 is Postfix's, and Postfix logs the original client", async () => {
  const postfix = await startUpstreamPostfix();
  // A lone dot and dot-led lines inside the body: unless each is stuffed again on the way out,
  // Postfix would see the message end early and take the rest for commands.
  const body = join(tempDir(), "dots.txt");
  writeFileSync(body, "before\n.\n.leading dot\n..two dots\nafter\n");
  const cases = [
    { identity: "xclient", port: postfix.port, source: "127.0.14.1", client: /client=unknown\[127\.0\.14\.1\]/ },
    { identity: "auto", port: postfix.port, source: "127.0.14.2", client: /client=unknown\[127\.0\.14\.2\]/ },
    { identity: "proxy", port: postfix.proxyPort, source: "127.0.14.3", client: /client=[^\s]*\[127\.0\.14\.3\]/ },
    { identity: "none", port: postfix.port, source: "127.0.14.4", client: /client=localhost\[127\.0\.0\.1\]/ },
  ];
  for (const c of cases) {
    const server = await startServer({
      MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${c.port}`,
      MXSCREEN_UPSTREAM_IDENTITY: c.identity,
      MXSCREEN_GREET_WAIT: "300ms",
    });
    const result = await send(server.port, c.source, "someone@example.org", ["--body", `@${body}`]);
    assert.equal(result.code, 0, `${c.identity}: ${result.output}`);
    const queued = /<-  250 2\.0\.0 Ok: queued as ([0-9A-F]+)/.exec(result.output);
    assert.ok(queued, `${c.identity}: Postfix's own queue id is passed back: ${result.output}`);
    const line = await postfix.waitForLine(new RegExp(`${queued[1]}: client=`));
    assert.match(line, c.client, `${c.identity}: ${line}`);
    await postfix.waitForLine(new RegExp(`${queued[1]}: to=<someone@example\\.org>.*status=sent`));
    await server.waitForLine(
      new RegExp(
        `event=DELIVERED client=${c.source.replace(/\./g, "\\.")}:\\d+ queue_id=${
          queued[1]
        } .*size=\\d+ relay=127\\.0\\.0\\.1:\\d+ reply="250 .*action=relay`,
      ),
    );
    await server.stop();
  }
}, RELAY);

test("recipients are verified in real time: Postfix's 550 5.1.1 is the client's answer, and the session goes on", async () => {
  const postfix = await startUpstreamPostfix();
  const server = await startServer({ MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${postfix.port}`, MXSCREEN_GREET_WAIT: "300ms" });
  const result = await send(server.port, "127.0.14.10", "nobody@example.org");
  assert.match(result.output, /<\*\* 550 5\.1\.1 <nobody@example\.org>: Recipient address rejected: User unknown in local recipient table/);
  const c = await RawClient.greeted(server.port, "127.0.14.11");
  await c.command("EHLO relay-client.example.net", /250 ENHANCEDSTATUSCODES\r\n$/);
  await c.command("MAIL FROM:<>", /250 2\.1\.0 Ok\r\n$/);
  await c.command("RCPT TO:<nobody@example.org>", /550 5\.1\.1 <nobody@example\.org>: Recipient address rejected[^\n]*\r\n$/);
  await c.command("RCPT TO:<someone@example.org>", /250 2\.1\.5 Ok\r\n$/);
  await c.command("RSET", /250 2\.0\.0 Ok\r\n$/);
  await c.command("MAIL FROM:<>", /250 2\.1\.0 Ok\r\n$/);
  await c.command("QUIT", /221 2\.0\.0 Bye\r\n$/);
}, RELAY);

test("DATA streams on as it arrives: most of a message is at the upstream before the client has finished sending it", async () => {
  const postfix = await startUpstreamPostfix();
  const server = await startServer({ MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${postfix.port}`, MXSCREEN_GREET_WAIT: "300ms" });
  const c = await RawClient.greeted(server.port, "127.0.14.20");
  await c.command("EHLO relay-client.example.net", /250 ENHANCEDSTATUSCODES\r\n$/);
  await c.command("MAIL FROM:<>", /250 2\.1\.0 Ok\r\n$/);
  await c.command("RCPT TO:<someone@example.org>", /250 2\.1\.5 Ok\r\n$/);
  await c.command("DATA", /354 [^\n]*\r\n$/);
  const line = "x".repeat(76) + "\r\n";
  const chunk = line.repeat(Math.ceil((1024 * 1024) / line.length));
  for (let i = 0; i < 8; i++) c.write(chunk);
  // Postfix writes a message it is receiving to incoming/: watch it grow while the final dot is still unsent.
  const incoming = join(postfix.queueDir, "incoming");
  const size = () => readdirSync(incoming).reduce((total, name) => total + statSync(join(incoming, name)).size, 0);
  const deadline = Date.now() + 15_000;
  while (size() < 6 * 1024 * 1024 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.ok(size() >= 6 * 1024 * 1024, `only ${size()} bytes at the upstream before the end of the data`);
  assert.doesNotMatch(c.text, /250 2\.0\.0/, "no answer before the end of the data");
  c.write(".\r\n");
  await c.until(/250 2\.0\.0 Ok: queued as [0-9A-F]+\r\n$/, 15_000);
  await postfix.waitForLine(/size=8\d{6},/);
}, RELAY);

test("the upstream failing midway, slow past MXSCREEN_UPSTREAM_TIMEOUT or down gives the client a 4xx, never a 250", async () => {
  const postfix = await startUpstreamPostfix();
  const impatient = await startServer({ MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${postfix.impatientPort}`, MXSCREEN_GREET_WAIT: "300ms" });
  const c = await RawClient.greeted(impatient.port, "127.0.14.30");
  await c.command("EHLO relay-client.example.net", /250 ENHANCEDSTATUSCODES\r\n$/);
  await c.command("MAIL FROM:<>", /250 2\.1\.0 Ok\r\n$/);
  await c.command("RCPT TO:<someone@example.org>", /250 2\.1\.5 Ok\r\n$/);
  await c.command("DATA", /354 [^\n]*\r\n$/);
  c.write("Subject: half\r\n");
  await new Promise((r) => setTimeout(r, 3500));
  c.write("the rest, too late for the upstream\r\n.\r\n");
  await c.until(/\r\n4\d\d [^\n]*\r\n$/);
  assert.match(c.text, /451 4\.3\.0 Error: the upstream failed during the message/);
  assert.doesNotMatch(c.text, /250 2\.0\.0/);

  const slow = await startServer({
    MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${postfix.slowPort}`,
    MXSCREEN_UPSTREAM_TIMEOUT: "1s",
    MXSCREEN_GREET_WAIT: "300ms",
  });
  const waited = await send(slow.port, "127.0.14.32", "someone@example.org");
  assert.match(waited.output, /<\*\* 451 4\.4\.1 mx\.test\.example Error: the mail server behind us is not available, try again later/);
  await slow.waitForLine(
    /event=UPSTREAM-FAILED client=127\.0\.14\.32:\d+ reason="127\.0\.0\.1:\d+ did not answer within 1000 ms" action=tempfail/,
  );

  const server = await startServer({ MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${postfix.port}`, MXSCREEN_GREET_WAIT: "300ms" });
  await postfix.stop();
  const result = await send(server.port, "127.0.14.31", "someone@example.org");
  assert.notEqual(result.code, 0);
  assert.match(result.output, /<\*\* 451 4\.4\.1 mx\.test\.example Error: the mail server behind us is not available, try again later/);
  await server.waitForLine(
    /event=UPSTREAM-FAILED client=127\.0\.14\.31:\d+ reason="cannot connect to 127\.0\.0\.1:\d+: .*" action=tempfail/,
  );
}, RELAY);
