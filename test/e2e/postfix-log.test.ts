import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "../harness.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { startServer } from "../helpers/server.ts";
import { swaks } from "../helpers/swaks.ts";

/** Debian's pflogsumm over a log file: its "Grand Totals" as numbers by label. */
function pflogsumm(file: string): { totals: Record<string, number>; report: string } {
  const run = spawnSync("pflogsumm", ["--problems-first", file], { encoding: "utf8", timeout: 20_000 });
  assert.equal(run.status, 0, `pflogsumm failed (is Debian's pflogsumm installed?): ${run.stderr}`);
  const totals: Record<string, number> = {};
  for (const [, n, label] of run.stdout.matchAll(/^\s+(\d+)\s+([a-z][a-z ]*?)(?: \(\d+%\))?$/gm)) totals[label] ??= Number(n);
  return { totals, report: run.stdout };
}

test("MXSCREEN_LOG=postfix: postscreen's lines after real traffic, and pflogsumm counts the message and the refusal", async () => {
  const server = await startServer({ MXSCREEN_LOG: "postfix", MXSCREEN_GREET_WAIT: "1s", MXSCREEN_ACCEPT_DOMAINS: "example.org" });
  const sent = await swaks([
    "--server",
    `127.0.0.1:${server.port}`,
    "--local-interface",
    "127.0.0.31",
    "--helo",
    "client.example.net",
    "--from",
    "sender@example.net",
    "--to",
    "someone@example.org",
  ]);
  assert.equal(sent.code, 0, sent.output);
  // A recipient refused in the session: smtpd's NOQUEUE line, with the envelope and the reply.
  const relaying = await RawClient.greeted(server.port, "127.0.0.31");
  await relaying.command("EHLO client.example.net", /^250 /m);
  await relaying.command("MAIL FROM:<sender@example.net>", /^250 /m);
  await relaying.command("RCPT TO:<someone@elsewhere.example>", /^554 5\.7\.1 /m);
  await relaying.command("QUIT", /^221 /m);
  await server.waitForLine(
    /postfix\/smtpd\[\d+\]: NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.31\]: 554 5\.7\.1 <someone@elsewhere\.example>: Relay access denied; from=<sender@example\.net> to=<someone@elsewhere\.example> proto=ESMTP helo=<client\.example\.net>$/,
  );
  const bot = await RawClient.open(server.port, "127.0.0.32");
  await bot.until(/^220-/);
  bot.write("EHLO bot\r\n");
  await bot.waitClosed(5000);
  await server.waitForLine(/PREGREET 10 after [\d.]+ from \[127\.0\.0\.32\]:\d+: EHLO bot\\r\\n$/);
  const again = await RawClient.open(server.port, "127.0.0.32");
  await again.waitClosed(5000);
  assert.match(again.text, /^554 5\.7\.1 /);
  await server.waitForLine(/NOQUEUE: reject: CONNECT from \[127\.0\.0\.32\]:\d+: 554 5\.7\.1 /);
  await server.waitForLine(/PASS NEW \[127\.0\.0\.31\]:\d+$/);

  const prefix = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z node-a postfix\/[a-z]+\[\d+\]: /;
  for (const line of server.lines) assert.match(line, prefix, "every line has the syslog prefix");
  const text = server.lines.join("\n");
  assert.match(text, /postfix\/postscreen\[\d+\]: CONNECT from \[127\.0\.0\.31\]:\d+ to \[127\.0\.0\.1\]:\d+\n/);
  assert.match(text, /postfix\/postscreen\[\d+\]: DENYLISTED \[127\.0\.0\.32\]:\d+\n/);

  const file = join(server.dir, "maillog");
  writeFileSync(file, text + "\n");
  const { totals, report } = pflogsumm(file);
  assert.equal(totals["received"], 1, report);
  assert.equal(totals["delivered"], 1, report);
  assert.equal(totals["rejected"], 2, report);
  assert.match(report, /Relay access denied/, report);
  assert.match(
    report,
    /message reject detail\n-+\n  CONNECT\n    blocked using mxscreen ban list \(total: 1\)\n\s+1\s+127\.0\.0\.32\n/,
    report,
  );
}, { timeoutMs: 40_000 });

test("MXSCREEN_LOG=postfix: postscreen's lines for real misbehaviour, each after the command the session was at", async () => {
  const server = await startServer({
    MXSCREEN_LOG: "postfix",
    MXSCREEN_GREET_WAIT: "200ms",
    MXSCREEN_COMMAND_TIMEOUT: "1s",
    MXSCREEN_MAX_COMMANDS: "10",
    MXSCREEN_MAX_CONN_PER_CLIENT: "1",
  });
  const http = await RawClient.greeted(server.port, "127.0.0.41");
  await http.command("EHLO web.example", /^250 /m);
  http.write("GET / HTTP/1.1\r\n");
  await http.waitClosed();
  await server.waitForLine(/: NON-SMTP COMMAND from \[127\.0\.0\.41\]:\d+ after EHLO: GET GET \/ HTTP\/1\.1$/);

  const bare = await RawClient.greeted(server.port, "127.0.0.42");
  bare.write("EHLO bare.example\n");
  await bare.waitClosed();
  await server.waitForLine(/: BARE NEWLINE from \[127\.0\.0\.42\]:\d+ after EHLO bare\.example$/);

  const eager = await RawClient.greeted(server.port, "127.0.0.46");
  eager.write("EHLO eager.example\r\nMAIL FROM:<a@eager.example>\r\n");
  await eager.waitClosed();
  await server.waitForLine(/: COMMAND PIPELINING from \[127\.0\.0\.46\]:\d+ after EHLO: MAIL FROM:<a@eager\.example>\\r\\n$/);

  const idle = await RawClient.greeted(server.port, "127.0.0.43");
  await idle.command("EHLO idle.example", /^250 /m);
  await idle.command("NOOP", /^250 /m);
  await idle.waitClosed(5000);
  await server.waitForLine(/: COMMAND TIME LIMIT from \[127\.0\.0\.43\]:\d+ after NOOP$/);

  const chatty = await RawClient.greeted(server.port, "127.0.0.44");
  await chatty.command("HELO chatty.example", /^250 /m);
  for (let i = 0; i < 9; i++) await chatty.command("NOOP", /^250 /m);
  chatty.write("NOOP\r\n");
  await chatty.waitClosed();
  await server.waitForLine(/: COMMAND COUNT LIMIT from \[127\.0\.0\.44\]:\d+ after NOOP$/);

  const first = await RawClient.open(server.port, "127.0.0.45");
  await first.until(/^220-/);
  const second = await RawClient.open(server.port, "127.0.0.45");
  await second.waitClosed();
  await server.waitForLine(/: NOQUEUE: reject: CONNECT from \[127\.0\.0\.45\]:\d+: too many connections$/);
  first.close();
  for (const client of ["41", "42", "46", "43", "44"]) {
    await server.waitForLine(new RegExp(`: DISCONNECT \\[127\\.0\\.0\\.${client}\\]:\\d+$`));
  }
}, { timeoutMs: 40_000 });
