import assert from "node:assert/strict";
import { readdirSync, readFileSync, renameSync } from "node:fs";
import { connect as tlsConnect } from "node:tls";
import { join } from "node:path";
import process from "node:process";
import { test } from "../harness.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { startServer, tempDir } from "../helpers/server.ts";
import { swaks } from "../helpers/swaks.ts";
import { makeCertificate, sClient } from "../helpers/tls.ts";

const E2E = { timeoutMs: 45_000 };

for (const workers of ["0", "2"]) {
  test(`STARTTLS with openssl s_client (TLS 1.3 and 1.2) and swaks --tls, delivered WITH ESMTPS (workers=${workers})`, async () => {
    const { cert, key } = makeCertificate("mx.test.example");
    // s_client writes its input as it reads it: EHLO and QUIT can share one TLS record, which
    // the pipelining check would rightly refuse; what is tested here is TLS, not patience.
    const server = await startServer({
      MXSCREEN_TLS_CERT: cert,
      MXSCREEN_TLS_KEY: key,
      MXSCREEN_WORKERS: workers,
      MXSCREEN_GREET_WAIT: "300ms",
      MXSCREEN_ACTION_PIPELINING: "ignore",
    });
    for (const version of ["-tls1_3", "-tls1_2"]) {
      const out = await sClient(server.port, [version], "EHLO secure.example\r\nQUIT\r\n");
      assert.match(out, /subject=CN\s?=\s?mx\.test\.example/);
      assert.match(out, version === "-tls1_3" ? /Protocol\s*:\s*TLSv1\.3|TLSv1\.3/ : /Protocol\s*:\s*TLSv1\.2|TLSv1\.2/);
      assert.match(out, /250-mx\.test\.example Hello secure\.example \[127\.0\.0\.1\]/, "the session goes on inside TLS");
      assert.doesNotMatch(out.slice(out.indexOf("Hello secure.example")), /STARTTLS/, "not offered again inside TLS");
      assert.match(out, /221 2\.0\.0 Bye/);
    }
    const sent = await swaks([
      "--server",
      `127.0.0.1:${server.port}`,
      "--tls",
      "--local-interface",
      "127.0.13.1",
      "--helo",
      "tls-client.example",
      "--to",
      "a@example.org",
      "--from",
      "b@example.net",
    ]);
    assert.equal(sent.code, 0, sent.output);
    assert.match(sent.output, /=== TLS started with cipher/);
    const file = readdirSync(join(server.spoolDir, "new"))[0];
    assert.match(readFileSync(join(server.spoolDir, "new", file), "utf8"), /by mx\.test\.example \(mxscreen\) with ESMTPS id/);
    await server.waitForLine(/event="PASS NEW" client=127\.0\.13\.1:\d+ helo=tls-client\.example .*tls=true/);
  }, E2E);
}

test("a command pipelined after STARTTLS in plaintext never runs inside the TLS session (CVE-2011-0411)", async () => {
  const { cert, key } = makeCertificate("mx.test.example");
  // The pipelining check alone would close this client; with it only logging, the TLS side must hold by itself.
  const server = await startServer({
    MXSCREEN_TLS_CERT: cert,
    MXSCREEN_TLS_KEY: key,
    MXSCREEN_GREET_WAIT: "300ms",
    MXSCREEN_ACTION_PIPELINING: "ignore",
  });
  const plain = await RawClient.open(server.port, "127.0.13.2");
  await plain.until(/^220 /m);
  plain.write("EHLO inject.example\r\n");
  await plain.until(/250 ENHANCEDSTATUSCODES\r\n$/);
  plain.write("STARTTLS\r\nRSET\r\n");
  await plain.until(/220 2\.0\.0 Ready to start TLS\r\n$/);
  const socket = plain.socket;
  socket.removeAllListeners("data");
  const secure = tlsConnect({ socket, rejectUnauthorized: false, servername: "mx.test.example" });
  await new Promise<void>((resolve, reject) => secure.once("secureConnect", resolve).once("error", reject));
  let replies = "";
  secure.setEncoding("latin1").on("data", (d: string) => replies += d);
  secure.write("NOOP\r\n");
  const deadline = Date.now() + 3000;
  while (!/250 2\.0\.0 Ok\r\n/.test(replies) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(replies, "250 2.0.0 Ok\r\n", "one reply, to NOOP: the injected RSET got none");
  secure.write("QUIT\r\n");
  await new Promise((r) => secure.once("close", r));
  await server.waitForLine(/client=127\.0\.13\.2:\d+ .*tls=true injected_bytes=6 /);
}, E2E);

test("the certificate is reloaded on SIGHUP and when its files change; a broken one keeps the old", async () => {
  const dir = tempDir();
  const first = makeCertificate("first.example", dir);
  const server = await startServer({ MXSCREEN_TLS_CERT: first.cert, MXSCREEN_TLS_KEY: first.key, MXSCREEN_GREET_WAIT: "200ms" });
  assert.match(await sClient(server.port, [], "QUIT\r\n"), /subject=CN\s?=\s?first\.example/);
  const second = makeCertificate("second.example", tempDir());
  renameSync(second.cert, first.cert);
  renameSync(second.key, first.key);
  process.kill(server.process.pid!, "SIGHUP");
  await server.waitForLine(/msg="TLS certificate reloaded"/);
  assert.match(await sClient(server.port, [], "QUIT\r\n"), /subject=CN\s?=\s?second\.example/);
  const third = makeCertificate("third.example", tempDir());
  renameSync(third.cert, first.cert);
  await server.waitForLine(/msg="TLS certificate not reloaded, still using the previous one: .*cannot be used together/, 12_000);
  assert.match(await sClient(server.port, [], "QUIT\r\n"), /subject=CN\s?=\s?second\.example/);
  renameSync(third.key, first.key);
  const reloads = () => server.lines.filter((l) => /msg="TLS certificate reloaded"/.test(l)).length;
  const deadline = Date.now() + 12_000;
  while (reloads() < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(reloads(), 2, "the fixed pair is picked up from the files without a signal");
  assert.match(await sClient(server.port, [], "QUIT\r\n"), /subject=CN\s?=\s?third\.example/);
}, { timeoutMs: 60_000 });

test("TLS settings that cannot work stop start-up with the variable and the reason", async () => {
  const { cert } = makeCertificate("mx.test.example");
  await assert.rejects(
    startServer({ MXSCREEN_TLS_CERT: cert }),
    /MXSCREEN_TLS_CERT=.* is not valid: expected MXSCREEN_TLS_CERT and MXSCREEN_TLS_KEY set together/,
  );
  await assert.rejects(
    startServer({ MXSCREEN_TLS_CERT: cert, MXSCREEN_TLS_KEY: "/nonexistent/key.pem" }),
    /cannot read MXSCREEN_TLS_KEY=\/nonexistent\/key\.pem: .*(ENOENT|No such file)/,
  );
}, E2E);
