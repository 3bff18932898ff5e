import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runtimeName } from "../../src/net/runtime/which-runtime.ts";
import { test } from "../harness.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { startServer, tempDir } from "../helpers/server.ts";
import { rowsEventually } from "../helpers/store-rows.ts";
import { spooled } from "../helpers/spooled.ts";
import { swaks } from "../helpers/swaks.ts";

const E2E = { timeoutMs: 30_000 };
const FAST = { MXSCREEN_GREET_WAIT: "300ms", MXSCREEN_ACCEPT_DOMAINS: "example.org", MXSCREEN_DNS_TIMEOUT: "1s" };

for (const workers of ["0", "1"]) {
  test(
    `sender-domain against dnsmasq: no MX/A/AAAA gets 550 5.1.8, a dead DNS server 450 4.1.8, a real domain 250 (workers=${workers})`,
    async () => {
      const server = await startServer({ ...FAST, MXSCREEN_WORKERS: workers }, {
        // Forwarded to a port where nothing answers: the lookup times out, as with a dead resolver.
        dns: ["--server=/broken.example/127.0.0.1#9", "--host-record=a-only.example,192.0.2.40"],
      });
      const c = await RawClient.greeted(server.port, "127.0.2.11");
      await c.command("HELO client.example.net", /^250 /);
      await c.command("MAIL FROM:<a@nx.example>", /^550 5\.1\.8 <a@nx\.example>: Sender address rejected: Domain not found\r\n$/);
      await c.command(
        "MAIL FROM:<a@broken.example>",
        /^450 4\.1\.8 <a@broken\.example>: Sender address rejected: Domain not found \(DNS: no answer within 1000 ms\)\r\n$/,
      );
      await c.command("MAIL FROM:<a@a-only.example>", /^250 2\.1\.0 Ok\r\n$/);
      await c.command("RSET", /^250 /);
      await c.command("MAIL FROM:<a@example.net>", /^250 2\.1\.0 Ok\r\n$/);
      await c.command("QUIT", /^221 /);
      await server.waitForLine(
        /event=SENDER-DOMAIN client=127\.0\.2\.11:\d+ sender=a@nx\.example domain=nx\.example dns=nxdomain .*also=SENDER-DOMAIN,PTR .*action=enforce$/,
      );
      const events = await rowsEventually(server.dbUrl, "SELECT evidence FROM events WHERE event = 'SENDER-DOMAIN' ORDER BY id", 2);
      assert.equal(events.length, 2);
      assert.match(String(events[1].evidence), /"dns":"no answer within 1000 ms"/);
    },
    E2E,
  );
}

test(
  "dnsbl against dnsmasq: a listed client is refused at RCPT but reaches postmaster; an unhealthy zone is logged, never counted",
  async () => {
    const server = await startServer({
      ...FAST,
      MXSCREEN_DNSBL: "zen.example=127.0.0.[2..11]*3,bad.example*3",
      MXSCREEN_DNSBL_THRESHOLD: "3",
    }, {
      dns: [
        "--address=/21.2.0.127.zen.example/127.0.0.4",
        // Spamhaus's "query refused: public resolver" code, for everyone: not a listing.
        "--address=/bad.example/127.255.255.254",
      ],
      admin: true,
    });
    const listed = await RawClient.greeted(server.port, "127.0.2.21");
    await listed.command("HELO client.example.net", /^250 /);
    await listed.command("MAIL FROM:<a@example.net>", /^250 /);
    await listed.command(
      "RCPT TO:<b@example.org>",
      /^550 5\.7\.1 <b@example\.org>: Service unavailable; client \[127\.0\.2\.21\] blocked using zen\.example\r\n$/,
    );
    await listed.command("RCPT TO:<postmaster@example.org>", /^250 /);
    await listed.command("QUIT", /^221 /);
    await server.waitForLine(
      /event=DNSBL client=127\.0\.2\.21:\d+ score=3 listed="zen\.example\*3" unhealthy=bad\.example .*dnsbl_score=3 .*action=enforce$/,
    );
    await server.waitForLine(
      /level=warn msg="DNSBL zone is unhealthy: [^"]*" zone=bad\.example reason="answer 127\.255\.255\.254 is an error code"/,
    );
    const metrics = await (await fetch(`${server.admin}/metrics`)).text();
    assert.match(metrics, /^mxscreen_dnsbl_zone_healthy\{zone="bad\.example"\} 0$/m);
    assert.match(metrics, /^mxscreen_dnsbl_zone_healthy\{zone="zen\.example"\} 1$/m);
    assert.match(metrics, /^mxscreen_dnsbl_lookup_seconds_count\{status="ok",zone="zen\.example"\} [1-9]\d*$/m, "latency by zone");

    const clean = await swaks([
      "--server",
      `127.0.0.1:${server.port}`,
      "--local-interface",
      "127.0.2.22",
      "--helo",
      "client.example.net",
      "--from",
      "a@example.net",
      "--to",
      "b@example.org",
    ]);
    assert.equal(clean.code, 0, clean.output);
    await server.waitForLine(/event="PASS NEW" client=127\.0\.2\.22:\d+ .*dnsbl_score=0 /);
  },
  E2E,
);

test(
  "dnswl against dnsmasq: a client scored at or below MXSCREEN_DNSWL_THRESHOLD skips the other checks, those across connections too",
  async () => {
    const server = await startServer(
      { ...FAST, MXSCREEN_DNSBL: "wl.example=127.0.[0..255].[1..3]*-4", MXSCREEN_MAX_BAD_RCPT_PREFIX: "1" },
      {
        dns: ["--address=/31.2.0.127.wl.example/127.0.9.2"],
      },
    );
    const c = await RawClient.greeted(server.port, "127.0.2.31");
    await c.command("HELO localhost", /^250 /);
    await c.command("MAIL FROM:<a@nx.example>", /^250 /);
    await c.command("RCPT TO:<b@example.org>", /^250 /);
    for (const guess of ["x", "y"]) await c.command(`RCPT TO:<${guess}@elsewhere.example>`, /^554 5\.7\.1 /);
    await c.command("QUIT", /^221 /);
    await server.waitForLine(/event="PASS NEW" client=127\.0\.2\.31:\d+ helo=localhost .*dnsbl_score=-4 /);
  },
  E2E,
);

test("ptr: spooled mail carries X-Mxscreen-FCrDNS from the client's reverse DNS", async () => {
  const server = await startServer(FAST, {
    dns: ["--ptr-record=41.2.0.127.in-addr.arpa,host41.example", "--host-record=host41.example,127.0.2.41"],
  });
  const result = await swaks([
    "--server",
    `127.0.0.1:${server.port}`,
    "--local-interface",
    "127.0.2.41",
    "--helo",
    "client.example.net",
    "--from",
    "a@example.net",
    "--to",
    "b@example.org",
  ]);
  assert.equal(result.code, 0, result.output);
  await server.waitForLine(/event="PASS NEW" client=127\.0\.2\.41:/);
  // Deno (2.9) answers PTR for 127.0.0.0/8 itself ("localhost"), so only Bun sees dnsmasq's record.
  const expected = runtimeName().startsWith("deno") ? "fail (ptr localhost)" : "pass (host41.example)";
  assert.match(
    spooled(server.spoolDir)[0],
    new RegExp(`\\nX-Mxscreen-FCrDNS: ${expected.replace(/[()]/g, "\\$&")}; client=\\[127\\.0\\.2\\.41\\]\\n`),
  );
}, E2E);

test(
  "ptr: a client without confirmed reverse DNS passes and delivers; the PTR fact is stored as an event row, not as its verdict",
  async () => {
    const server = await startServer(FAST);
    const result = await swaks([
      "--server",
      `127.0.0.1:${server.port}`,
      "--local-interface",
      "127.0.2.42",
      "--helo",
      "client.example.net",
      "--from",
      "a@example.net",
      "--to",
      "b@example.org",
    ]);
    assert.equal(result.code, 0, result.output);
    await server.waitForLine(/event="PASS NEW" client=127\.0\.2\.42:\d+ .*fcrdns=(none|fail) also=PTR /);
    const rows = await rowsEventually(server.dbUrl, "SELECT event, action FROM events WHERE client_ip = '127.0.2.42' ORDER BY id", 2);
    assert.deepEqual(rows.map((r) => [r.event, r.action]), [["PASS NEW", "pass"], ["PTR", "ignore"]]);
    assert.match(spooled(server.spoolDir)[0], /\nX-Mxscreen-FCrDNS: (none|fail \(ptr localhost\)); client=\[127\.0\.2\.42\]\n/);
  },
  E2E,
);

test(
  "helo forward DNS against dnsmasq: a HELO name that resolves to the client is logged helo_dns=match, one that does not helo_dns=mismatch",
  async () => {
    const server = await startServer(FAST, {
      dns: ["--host-record=client51.example.net,127.0.2.51", "--host-record=elsewhere.example.net,192.0.2.99"],
    });
    // Each from a sender domain of its own: one the runner has just looked up answers MAIL at once,
    // and on loopback the session could end before its HELO name's answer (logged once it came).
    for (
      const [source, helo, from] of [
        ["127.0.2.51", "client51.example.net", "a@example.net"],
        ["127.0.2.52", "elsewhere.example.net", "a@example.com"],
      ]
    ) {
      const result = await swaks([
        "--server",
        `127.0.0.1:${server.port}`,
        "--local-interface",
        source,
        "--helo",
        helo,
        "--from",
        from,
        "--to",
        "b@example.org",
      ]);
      assert.equal(result.code, 0, result.output);
    }
    await server.waitForLine(/event="PASS NEW" client=127\.0\.2\.51:\d+ helo=client51\.example\.net .*helo_dns=match /);
    await server.waitForLine(/event="PASS NEW" client=127\.0\.2\.52:\d+ helo=elsewhere\.example\.net .*helo_dns=mismatch /);
  },
  E2E,
);

test("dnsbl reply map against dnsmasq: a Spamhaus DQS-style zone, its key in the name, is refused by the name the map shows", async () => {
  const map = join(tempDir(), "dnsbl_reply");
  writeFileSync(map, "# the key stays ours\nk3y0123456789.zen.dq.example zen.example\n");
  const server = await startServer({
    ...FAST,
    MXSCREEN_DNSBL: "k3y0123456789.zen.dq.example*3",
    MXSCREEN_DNSBL_THRESHOLD: "3",
    MXSCREEN_DNSBL_REPLY_MAP: map,
  }, {
    dns: ["--address=/23.2.0.127.k3y0123456789.zen.dq.example/127.0.0.2"],
  });
  const listed = await RawClient.greeted(server.port, "127.0.2.23");
  await listed.command("HELO client.example.net", /^250 /);
  await listed.command("MAIL FROM:<a@example.net>", /^250 /);
  await listed.command(
    "RCPT TO:<b@example.org>",
    /^550 5\.7\.1 <b@example\.org>: Service unavailable; client \[127\.0\.2\.23\] blocked using zen\.example\r\n$/,
  );
  await listed.command("QUIT", /^221 /);
  assert.doesNotMatch(listed.text, /k3y/, "the key never reaches the client");
  await server.waitForLine(/event=DNSBL client=127\.0\.2\.23:\d+ score=3 listed="k3y0123456789\.zen\.dq\.example\*3" .*action=enforce$/);
}, E2E);

test(
  "dnsbl: a zone that lists RFC 5782's test address 127.0.0.1 (a wildcard) is unhealthy, and nobody is refused because of it",
  async () => {
    const server = await startServer({ ...FAST, MXSCREEN_DNSBL: "wild.example*3,zen.example*3", MXSCREEN_DNSBL_THRESHOLD: "3" }, {
      dns: ["--address=/wild.example/127.0.0.2", "--address=/61.2.0.127.zen.example/127.0.0.2"],
    });
    await server.waitForLine(
      /level=warn msg="DNSBL zone is unhealthy: none of its answers count[^"]*" zone=wild\.example reason="the zone lists 127\.0\.0\.1 \(127\.0\.0\.2\)/,
    );
    const result = await swaks([
      "--server",
      `127.0.0.1:${server.port}`,
      "--local-interface",
      "127.0.2.62",
      "--helo",
      "client.example.net",
      "--from",
      "a@example.net",
      "--to",
      "b@example.org",
    ]);
    assert.equal(result.code, 0, result.output);
    await server.waitForLine(/event="PASS NEW" client=127\.0\.2\.62:\d+ .*dnsbl_score=0 /);
    const listed = await RawClient.greeted(server.port, "127.0.2.61");
    await listed.command("HELO client.example.net", /^250 /);
    await listed.command("MAIL FROM:<a@example.net>", /^250 /);
    await listed.command(
      "RCPT TO:<b@example.org>",
      /^550 5\.7\.1 <b@example\.org>: Service unavailable; client \[127\.0\.2\.61\] blocked using zen\.example\r\n$/,
      5000,
    );
  },
  E2E,
);
