import assert from "node:assert/strict";
import { test } from "../harness.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { startServer } from "../helpers/server.ts";

const E2E = { timeoutMs: 30_000 };
const FAST = { MXSCREEN_GREET_WAIT: "200ms", MXSCREEN_ACCEPT_DOMAINS: "example.org", MXSCREEN_OWN_NAMES: "mx2.test.example" };

test("helo-claims: a HELO naming our mail domain, another of our names or the address it connected to is refused at RCPT and logged", async () => {
  const server = await startServer(FAST);
  const cases: [string, string, string][] = [
    ["127.0.2.1", "example.org", "one of our mail domains"],
    ["127.0.2.2", "MX2.test.example", "our own host name"],
    ["127.0.2.3", "[127.0.0.1]", "our own address"],
  ];
  for (const [source, helo, claim] of cases) {
    const c = await RawClient.greeted(server.port, source);
    await c.command(`EHLO ${helo}`, /250 ENHANCEDSTATUSCODES\r\n$/);
    await c.command("MAIL FROM:<a@example.net>", /^250 /m);
    await c.command("RCPT TO:<someone@example.org>", /^550 5\.7\.1 <someone@example\.org>: Helo command rejected: you are not (us|at our address)\r\n$/m);
    await c.command("RCPT TO:<postmaster@example.org>", /^250 /m);
    await c.command("QUIT", /^221 /m);
    const escaped = helo.replace(/[.[\]]/g, "\\$&");
    await server.waitForLine(new RegExp(`event=HELO-CLAIMS client=${source.replaceAll(".", "\\.")}:\\d+ helo="?${escaped}"? claim="${claim}" .*action=enforce$`));
  }
  const own = await RawClient.greeted(server.port, "127.0.0.1");
  await own.command("EHLO [127.0.0.1]", /250 ENHANCEDSTATUSCODES\r\n$/);
  await own.command("MAIL FROM:<a@example.net>", /^250 /m);
  await own.command("RCPT TO:<someone@example.org>", /^250 /m, 5_000);
  own.close();
}, E2E);
