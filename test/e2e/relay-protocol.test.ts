import assert from "node:assert/strict";
import { test } from "../harness.ts";
import { startUpstreamPostfix, type UpstreamPostfix } from "../helpers/postfix.ts";
import { startServer, tempDir } from "../helpers/server.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { swaks } from "../helpers/swaks.ts";
import { makeCertificate } from "../helpers/tls.ts";

const RELAY = { timeoutMs: 90_000 };
const escape = (text: string) => text.replace(/[.[\]]/g, "\\$&");

/** One message through mxscreen from `source`; resolves with Postfix's queue id. */
async function deliver(port: number, source: string, helo: string, extra: string[] = [], to = "someone@example.org"): Promise<string> {
  const result = await swaks([
    "--server",
    `127.0.0.1:${port}`,
    "--local-interface",
    source,
    "--helo",
    helo,
    "--from",
    "sender@example.net",
    "--to",
    to,
    ...extra,
  ]);
  assert.equal(result.code, 0, `${source}: ${result.output}`);
  const queued = /<-  250 2\.0\.0 Ok: queued as ([0-9A-F]+)/.exec(result.output);
  assert.ok(queued, `${source}: Postfix's own queue id is passed back: ${result.output}`);
  return queued[1];
}

/** The Received: header Postfix itself wrote for a message (logged by the upstream's header_checks WARN). */
function postfixReceived(postfix: UpstreamPostfix, queueId: string): Promise<string> {
  return postfix.waitForLine(new RegExp(`${queueId}: warning: header Received: from .*by upstream\\.test\\.example`));
}

test("XCLIENT: Postfix records the client's HELO name, not ours, on a new connection and on a warm one", async () => {
  const postfix = await startUpstreamPostfix();
  const server = await startServer({
    MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${postfix.port}`,
    MXSCREEN_UPSTREAM_IDENTITY: "xclient",
    MXSCREEN_GREET_WAIT: "300ms",
  });
  // The second session is introduced on the first one's warm connection (XCLIENT, then EHLO again).
  for (const [source, helo] of [["127.0.17.1", "first-client.example.net"], ["127.0.17.2", "second-client.example.net"]]) {
    const id = await deliver(server.port, source, helo);
    const line = await postfixReceived(postfix, id);
    assert.match(line, new RegExp(`Received: from ${escape(helo)} \\(unknown \\[${escape(source)}\\]\\)`), line);
    assert.match(line, new RegExp(`helo=<${escape(helo)}>`), line);
    assert.doesNotMatch(line, /mx\.test\.example \(unknown/, "our own name is never the client's");
  }
  assert.equal(
    postfix.log.filter((line) => /: connect from localhost\[127\.0\.0\.1\]/.test(line)).length,
    1,
    "both sessions over one connection",
  );
  // A client that said HELO is one that spoke SMTP, not ESMTP (XCLIENT PROTO=SMTP; the EHLO after it keeps that).
  const id = await deliver(server.port, "127.0.17.3", "old-client.example.net", ["--protocol", "SMTP"]);
  assert.match(
    await postfixReceived(postfix, id),
    new RegExp(
      `Received: from old-client\\.example\\.net \\(unknown \\[127\\.0\\.17\\.3\\]\\).*with SMTP id ${id}.*proto=SMTP helo=<old-client\\.example\\.net>`,
    ),
  );
}, RELAY);

test("SMTPUTF8, DSN, BODY=8BITMIME and BDAT reach Postfix as the client sent them, offered once its EHLO is known", async () => {
  const postfix = await startUpstreamPostfix();
  const server = await startServer({ MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${postfix.port}`, MXSCREEN_GREET_WAIT: "300ms" }, {
    // The sender domain's MX, looked up by its A-labels.
    dns: ["--mx-host=xn--exmple-cua.net,mail.example.net,10"],
  });
  // The first session teaches the pool what Postfix offers.
  await deliver(server.port, "127.0.17.11", "client.example.net");
  const c = await RawClient.greeted(server.port, "127.0.17.12");
  await c.command("EHLO client.example.net", /250-8BITMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n250-CHUNKING\r\n250 ENHANCEDSTATUSCODES\r\n$/);
  await c.command("MAIL FROM:<jöe@exämple.net> BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=mx+2Denv1", /250 2\.1\.0 Ok\r\n$/);
  await c.command("RCPT TO:<someone@example.org> NOTIFY=SUCCESS ORCPT=rfc822;someone@example.org", /250 2\.1\.5 Ok\r\n$/);
  await c.command("DATA", /354 [^\n]*\r\n$/);
  c.write("Subject: Grüße\r\n\r\nGrüße aus Köln\r\n.\r\n");
  const queued = /250 2\.0\.0 Ok: queued as ([0-9A-F]+)\r\n$/.exec(await c.until(/250 2\.0\.0 Ok: queued as [0-9A-F]+\r\n$/, 15_000));
  assert.ok(queued);
  // BDAT: Postfix offers CHUNKING, the chunks go on as one DATA stream; a lone dot inside a chunk is content, stuffed on the way.
  await c.command("MAIL FROM:<sender@example.net>", /250 2\.1\.0 Ok\r\n$/);
  await c.command("RCPT TO:<someone@example.org>", /250 2\.1\.5 Ok\r\n$/);
  const first = "Subject: chunked\r\n\r\nBODYCHECK: before\r\n.\r\nBODYCHECK: af";
  const last = "ter the dot\r\n";
  let from = c.text.length;
  c.write(`BDAT ${first.length}\r\n${first}`);
  await c.until(new RegExp(`^250 2\\.0\\.0 ${first.length} octets received\r\n$`), 5_000, from);
  from = c.text.length;
  c.write(`BDAT ${last.length} LAST\r\n${last}`);
  const chunked = /^250 2\.0\.0 Ok: queued as ([0-9A-F]+)\r\n$/.exec(
    (await c.until(/^250 2\.0\.0 Ok: queued as [0-9A-F]+\r\n$/, 15_000, from)).slice(from),
  );
  assert.ok(chunked);
  await c.command("QUIT", /221 /);
  await postfix.waitForLine(new RegExp(`${chunked[1]}: warning: body BODYCHECK: after the dot`));
  await postfix.waitForLine(new RegExp(`${queued[1]}: from=<jöe@exämple\\.net>`));
  // NOTIFY=SUCCESS reached Postfix: it reports the delivery to the sender.
  await postfix.waitForLine(new RegExp(`${queued[1]}: sender delivery status notification: [0-9A-F]+`));
}, RELAY);

test(
  "STARTTLS to the upstream: used when Postfix offers it (may), the certificate checked with verify, a wrong one refused with a 4xx",
  async () => {
    const dir = tempDir();
    const { cert, key } = makeCertificate("upstream.test.example", dir, ["DNS:upstream.test.example", "IP:127.0.0.1"]);
    const stranger = makeCertificate("stranger.example", dir);
    const postfix = await startUpstreamPostfix({ tls: { cert, key } });
    const upstream = `smtp://127.0.0.1:${postfix.tlsPort}`;
    const cases: { source: string; env: Record<string, string> }[] = [
      { source: "127.0.17.21", env: {} },
      { source: "127.0.17.22", env: { MXSCREEN_UPSTREAM_TLS: "verify", MXSCREEN_UPSTREAM_TLS_CA: cert } },
    ];
    for (const c of cases) {
      const server = await startServer({ MXSCREEN_UPSTREAM: upstream, MXSCREEN_GREET_WAIT: "300ms", ...c.env });
      const id = await deliver(server.port, c.source, "tls-client.example.net");
      const received = await postfixReceived(postfix, id);
      // Postfix writes ESMTPS only for a session inside TLS; its client is ours, introduced by XCLIENT inside it.
      assert.match(
        received,
        new RegExp(`Received: from tls-client\\.example\\.net \\(unknown \\[${escape(c.source)}\\]\\).*with ESMTPS id ${id}`),
        received,
      );
      await server.waitForLine(
        new RegExp(`event=DELIVERED client=${escape(c.source)}:\\d+ queue_id=${id} .*relay=127\\.0\\.0\\.1:\\d+ relay_tls=true reply=`),
      );
      await server.stop();
    }
    assert.ok(
      postfix.log.some((line) => /TLS connection established from localhost\[127\.0\.0\.1\]: TLSv1\.[23]/.test(line)),
      postfix.log.join("\n"),
    );

    const wrongCa = await startServer({
      MXSCREEN_UPSTREAM: upstream,
      MXSCREEN_GREET_WAIT: "300ms",
      MXSCREEN_UPSTREAM_TLS: "verify",
      MXSCREEN_UPSTREAM_TLS_CA: stranger.cert,
    });
    const refused = await swaks([
      "--server",
      `127.0.0.1:${wrongCa.port}`,
      "--local-interface",
      "127.0.17.23",
      "--helo",
      "tls-client.example.net",
      "--from",
      "sender@example.net",
      "--to",
      "someone@example.org",
    ]);
    assert.match(refused.output, /<\*\* 451 4\.4\.1 mx\.test\.example Error: the mail server behind us is not available, try again later/);
    await wrongCa.waitForLine(
      /event=UPSTREAM-FAILED client=127\.0\.17\.23:\d+ reason="TLS handshake with 127\.0\.0\.1:\d+ failed: [^"]+" action=tempfail/,
    );

    // may, and a handshake that fails (this listener speaks only TLS 1.1 and older): the mail goes on in plaintext, said once.
    const fallback = await startServer({ MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${postfix.oldTlsPort}`, MXSCREEN_GREET_WAIT: "300ms" });
    for (const source of ["127.0.17.25", "127.0.17.26"]) {
      const id = await deliver(fallback.port, source, "tls-client.example.net");
      assert.match(await postfixReceived(postfix, id), new RegExp(`with ESMTP id ${id}`));
      const delivered = await fallback.waitForLine(new RegExp(`event=DELIVERED client=${escape(source)}:`));
      assert.doesNotMatch(delivered, /relay_tls/);
    }
    assert.equal(
      fallback.lines.filter((line) => /level=warn .*TLS handshake with 127\.0\.0\.1:\d+ failed: .*relaying in plaintext/.test(line)).length,
      1,
      fallback.lines.join("\n"),
    );

    // verify against an upstream that offers no STARTTLS: nothing is sent in plaintext.
    const plain = await startServer({
      MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${postfix.port}`,
      MXSCREEN_GREET_WAIT: "300ms",
      MXSCREEN_UPSTREAM_TLS: "verify",
    });
    const none = await swaks([
      "--server",
      `127.0.0.1:${plain.port}`,
      "--local-interface",
      "127.0.17.24",
      "--helo",
      "tls-client.example.net",
      "--from",
      "sender@example.net",
      "--to",
      "someone@example.org",
    ]);
    assert.match(none.output, /<\*\* 451 4\.4\.1 /);
    await plain.waitForLine(
      /event=UPSTREAM-FAILED client=127\.0\.17\.24:\d+ reason="127\.0\.0\.1:\d+ does not offer STARTTLS, which MXSCREEN_UPSTREAM_TLS=verify requires" action=tempfail/,
    );
  },
  RELAY,
);

test(
  "a HELO longer than a host name can be (past 255 octets; '+' and '=' triple in xtext) still relays the mail our checks let through",
  async () => {
    const postfix = await startUpstreamPostfix();
    const long = `${Array.from({ length: 5 }, (_, i) => `${String.fromCharCode(97 + i)}${"x".repeat(58)}`).join(".")}.example.net`;
    const heavy = `${"=+".repeat(330)}.example`;
    // 130 characters, 263 octets in UTF-8: what Postfix measures.
    const wide = `${"é".repeat(130)}.example`;
    for (const identity of ["xclient", "xforward"]) {
      const server = await startServer({
        MXSCREEN_UPSTREAM: `smtp://127.0.0.1:${postfix.port}`,
        MXSCREEN_UPSTREAM_IDENTITY: identity,
        MXSCREEN_GREET_WAIT: "300ms",
      });
      for (const [i, helo] of [long, heavy, wide].entries()) {
        const source = `127.0.19.${identity === "xclient" ? 1 + i : 11 + i}`;
        // helo-syntax refuses every other recipient of such a client (550 at RCPT); postmaster@ gets through to the upstream.
        const id = await deliver(server.port, source, helo, [], "postmaster@example.org");
        const line = await postfix.waitForLine(new RegExp(`${id}: client=`));
        assert.match(
          line,
          new RegExp(`client=unknown\\[${escape(source)}\\]`),
          `${identity}: the client's address reaches Postfix: ${line}`,
        );
      }
      await server.stop();
    }
  },
  RELAY,
);
