import assert from "node:assert/strict";
import { test } from "../harness.ts";
import { startDnsmasq } from "../helpers/dnsmasq.ts";
import { type RunningServer, startServer, tempDir } from "../helpers/server.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { rowsEventually } from "../helpers/store-rows.ts";

const ZONE = { MXSCREEN_DNSBL: "zen.example=127.0.0.[2..11]*3", MXSCREEN_DNSBL_THRESHOLD: "3", MXSCREEN_GREET_WAIT: "300ms", MXSCREEN_ACCEPT_DOMAINS: "example.org" };

/** A session from `source` up to its RCPT's answer, then QUIT; returns that answer. */
async function rcpt(server: RunningServer, source: string): Promise<string> {
  const c = await RawClient.greeted(server.port, source);
  await c.command("HELO client.example.net", /^250 /);
  await c.command("MAIL FROM:<a@example.net>", /^250 /);
  const answer = await c.command("RCPT TO:<b@example.org>", /^\d{3} /m);
  await c.command("QUIT", /^221 /);
  await c.waitClosed();
  return answer.trim();
}

test("per-test expiry: a passed client is not looked up in the DNSBL within MXSCREEN_DNSBL_TTL; once its verdict is older, it is looked up again and refused now that it is listed, and a clean one's pass is renewed", async () => {
  const dir = tempDir();
  const clean = await startServer(ZONE, { dir });
  assert.match(await rcpt(clean, "127.0.22.1"), /^250 /);
  assert.match(await rcpt(clean, "127.0.22.2"), /^250 /);
  await clean.waitForLine(/event="PASS NEW" client=127\.0\.22\.2:\d+ .*dnsbl_score=0 /);
  await clean.stop();

  // Since then 127.0.22.1 was listed. Each node below starts with an empty DNSBL cache.
  const dns = await startDnsmasq(["--address=/1.22.0.127.zen.example/127.0.0.4"]);
  const asked = () => dns.log.join("").includes("1.22.0.127.zen.example");
  const within = await startServer({ ...ZONE, MXSCREEN_DNS: dns.address }, { dir });
  assert.match(await rcpt(within, "127.0.22.1"), /^250 /, "passed an hour ago or less: its DNSBL verdict stands (MXSCREEN_DNSBL_TTL 1h)");
  await within.waitForLine(/event="PASS OLD" client=127\.0\.22\.1:/);
  assert.equal(asked(), false, "not looked up");
  await within.stop();

  const expired = await startServer({ ...ZONE, MXSCREEN_DNS: dns.address, MXSCREEN_DNSBL_TTL: "100ms" }, { dir });
  assert.equal(await rcpt(expired, "127.0.22.1"), "550 5.7.1 <b@example.org>: Service unavailable; client [127.0.22.1] blocked using zen.example");
  assert.equal(asked(), true);
  await expired.waitForLine(/event=DNSBL client=127\.0\.22\.1:\d+ score=3 listed="zen\.example\*3" .*action=enforce$/);
  assert.match(await rcpt(expired, "127.0.22.2"), /^250 /);
  await expired.waitForLine(/event="PASS OLD" client=127\.0\.22\.2:\d+ .*dnsbl_score=0 /);
  const renewed = await rowsEventually(expired.dbUrl, "SELECT check_id FROM lists WHERE kind = 'pass' AND prefix = '127.0.22.2/32' AND check_id = 'dnsbl'");
  assert.equal(renewed.length, 1, "the clean client's pass now dates its DNSBL verdict from this lookup");
  const refused = await rowsEventually(expired.dbUrl, "SELECT check_id FROM lists WHERE kind = 'pass' AND prefix = '127.0.22.1/32'");
  assert.deepEqual(refused.map((row) => row.check_id), ["pregreet"], "the listed one's is not renewed: it is looked up again next time");
}, { timeoutMs: 40_000 });
