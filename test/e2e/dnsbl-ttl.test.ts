import assert from "node:assert/strict";
import { test } from "../harness.ts";
import { startDnsmasq } from "../helpers/dnsmasq.ts";
import { type RunningServer, startServer, tempDir } from "../helpers/server.ts";
import { RawClient } from "../helpers/smtp-client.ts";

const ZONE = {
  MXSCREEN_DNSBL: "zen.example=127.0.0.[2..11]*3",
  MXSCREEN_DNSBL_THRESHOLD: "3",
  MXSCREEN_GREET_WAIT: "300ms",
  MXSCREEN_ACCEPT_DOMAINS: "example.org",
};

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

test(
  "per-test expiry: a passed client is not looked up in the DNSBL within MXSCREEN_DNSBL_TTL; once its verdict is older, it is looked up again and refused now that it is listed, each time until it is clean",
  async () => {
    const dir = tempDir();
    const clean = await startServer(ZONE, { dir });
    assert.match(await rcpt(clean, "127.0.22.1"), /^250 /);
    await clean.waitForLine(/event="PASS NEW" client=127\.0\.22\.1:\d+ .*dnsbl_score=0 /);
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
    const refusal = "550 5.7.1 <b@example.org>: Service unavailable; client [127.0.22.1] blocked using zen.example";
    assert.equal(await rcpt(expired, "127.0.22.1"), refusal);
    assert.equal(asked(), true);
    await expired.waitForLine(/event=DNSBL client=127\.0\.22\.1:\d+ score=3 listed="zen\.example\*3" .*action=enforce$/);
    assert.equal(await rcpt(expired, "127.0.22.1"), refusal, "a listed client's verdict is not renewed: looked up again (from the cache)");
  },
  { timeoutMs: 40_000 },
);

test(
  "per-test expiry: once the greet test's pass (MXSCREEN_PASS_TTL) has expired the client waits out the greeting again, but while its protocol tests' pass (MXSCREEN_PROTOCOL_PASS_TTL) holds it is not refused EHLO as a new client is",
  async () => {
    const env = { MXSCREEN_GREET_WAIT: "300ms", MXSCREEN_EHLO_REFUSAL: "true", MXSCREEN_PASS_TTL: "1s" };
    const visit = async (server: RunningServer, source: string) => {
      const c = await RawClient.open(server.port, source);
      const greeting = (await c.until(/^220 /m)).startsWith("220-") ? "waited" : "at once";
      const ehlo = (await c.command("EHLO client.example.net", /^\d{3} /m)).slice(0, 3);
      if (ehlo === "502") await c.command("HELO client.example.net", /^250 /);
      await c.command("QUIT", /^221 /);
      await c.waitClosed();
      return [greeting, ehlo];
    };
    await Promise.all(([["1h", ["waited", "250"]], ["1s", ["waited", "502"]]] as const).map(async ([protocolTtl, second]) => {
      const node = await startServer({ ...env, MXSCREEN_PROTOCOL_PASS_TTL: protocolTtl });
      assert.deepEqual(await visit(node, "127.0.23.1"), ["waited", "502"], "a new client");
      assert.deepEqual(await visit(node, "127.0.23.1"), ["at once", "250"], "passed");
      await new Promise((r) => setTimeout(r, 1_100));
      assert.deepEqual(await visit(node, "127.0.23.1"), second, `greet pass expired, protocol pass ${protocolTtl}`);
    }));
  },
  { timeoutMs: 40_000 },
);
