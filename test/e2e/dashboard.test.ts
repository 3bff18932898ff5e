import assert from "node:assert/strict";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { runtimeName } from "../../src/net/runtime/which-runtime.ts";
import { test } from "../harness.ts";
import { renderedDom, screenshot } from "../helpers/chromium.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { ROOT, startServer } from "../helpers/server.ts";
import { swaks } from "../helpers/swaks.ts";

function cell(dom: string, id: string): string {
  const m = new RegExp(`id="${id}"[^>]*><b[^>]*>([^<]*)</b>`).exec(dom);
  assert.ok(m, `no tile #${id} in the page`);
  return m[1];
}

test("the dashboard in real Chromium shows the numbers real SMTP traffic produced, and explain links work", async () => {
  const server = await startServer({ MXSCREEN_GREET_WAIT: "500ms", MXSCREEN_NODE: "dash-node", MXSCREEN_ACTION_HELO_SYNTAX: "ignore" }, {
    admin: true,
  });
  for (const source of ["127.0.4.1", "127.0.4.2"]) {
    const bot = await RawClient.open(server.port, source);
    await bot.until(/^220-/);
    bot.write("EHLO ratware\r\n");
    await bot.waitClosed();
  }
  const again = await RawClient.open(server.port, "127.0.4.1");
  await again.waitClosed();
  const sent = await swaks([
    "--server",
    `127.0.0.1:${server.port}`,
    "--local-interface",
    "127.0.4.9",
    "--helo",
    "sender.example.net",
    "--to",
    "a@example.org",
    "--from",
    "b@example.net",
  ]);
  assert.equal(sent.code, 0, sent.output);
  await server.waitForLine(/event="PASS NEW" client=127\.0\.4\.9/);
  // A hit only logged: the client delivered, so it is neither passed clean nor refused.
  const logged = await swaks([
    "--server",
    `127.0.0.1:${server.port}`,
    "--local-interface",
    "127.0.4.10",
    "--helo",
    "laptop",
    "--to",
    "a@example.org",
    "--from",
    "b@example.net",
  ]);
  assert.equal(logged.code, 0, logged.output);
  await server.waitForLine(/event=HELO client=127\.0\.4\.10.* action=ignore/);

  const dom = await renderedDom(`${server.admin}/`);
  assert.match(dom, /<h1>mxscreen on dash-node<\/h1>/);
  assert.equal(cell(dom, "refused-hour"), "3", "two pregreets and one banned reconnection");
  assert.equal(cell(dom, "passed-hour"), "1");
  assert.equal(cell(dom, "let-through-hour"), "1", "the helo-syntax hit in ignore");
  assert.match(dom, /<table id="verdicts">[\s\S]*<td>helo<\/td><td>1 \(1 let through\)<\/td>/);
  assert.equal(cell(dom, "bans"), "2");
  assert.equal(cell(dom, "open"), "0");
  assert.match(dom, /<svg class="chart"[^>]*>[\s\S]*<rect [^>]*fill="#c62828"/);
  assert.match(
    dom,
    /<table id="offenders">[\s\S]*<td>127\.0\.4\.1<\/td><td>2<\/td><td>BANNED · \d+ s ago<\/td><td><a href="\/explain\/127\.0\.4\.1">explain<\/a>/,
  );
  assert.match(dom, /<table id="nodes">[\s\S]*<td>dash-node<\/td><td>(deno|bun) [\d.]+<\/td>/);
  assert.match(dom, /<b class="good">reachable<\/b>/);

  const explainDom = await renderedDom(`${server.admin}/explain/127.0.4.1`);
  assert.match(explainDom, /Now: <b>banned as 127\.0\.4\.1\/32 until .* by dash-node \(pregreet: PREGREET\)<\/b>/);
  assert.match(
    explainDom,
    /<td>PREGREET<\/td><td>pregreet<\/td><td>ban<\/td><td><code>\{"after_ms":\d+,"sent":"EHLO ratware\\r\\n","bytes":14\}<\/code>/,
  );

  const dir = join(ROOT, "test-artifacts");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `dashboard-${runtimeName().split(" ")[0]}.png`);
  await screenshot(`${server.admin}/`, file);
  assert.ok(existsSync(file) && statSync(file).size > 10_000, `screenshot ${file}`);
}, { timeoutMs: 90_000 });
