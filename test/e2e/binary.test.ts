import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "../harness.ts";
import { run } from "../helpers/cli.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { ROOT, startServer, tempDir } from "../helpers/server.ts";

const E2E = { timeoutMs: 60_000 };

/** `npm run build` into a directory of this test (about a second): the repository's dist/ may be another run's. */
async function binary(): Promise<string> {
  const outfile = join(tempDir("mxscreen-binary-"), "mxscreen");
  const build = await run("npm", ["run", "-s", "build", "--", "--outfile", outfile], ROOT, { HOME: tempDir() });
  assert.equal(build.code, 0, `npm run build failed:\n${build.stdout}${build.stderr}`);
  return outfile;
}

test(
  "the single binary, started from an empty directory, greets, runs sessions in its worker, bans a pregreet client and exits 0 on SIGTERM",
  async () => {
    const mxscreen = await binary();
    const dir = tempDir();
    // Its own defaults for the store, journal and spool (data/ in the working directory), and the node named as on Fly.io.
    const server = await startServer(
      { MXSCREEN_DB_URL: "", MXSCREEN_SPOOL_DIR: "", MXSCREEN_QUEUE_FILE: "", MXSCREEN_NODE: "", FLY_REGION: "ams", MXSCREEN_WORKERS: "1" },
      { dir, command: { command: mxscreen, args: ["serve"] } },
    );
    const started = await server.waitForLine(/mxscreen started/);
    assert.match(started, /^time=\S+ node=ams level=info msg="mxscreen started" runtime="bun [\d.]+" version=\d+\.\d+\.\d+ .*workers=1 /);

    const polite = await RawClient.greeted(server.port, "127.0.0.91");
    polite.write("EHLO mail.example.net\r\n");
    await polite.until(/^250 /m);
    polite.write("QUIT\r\n");
    await polite.waitClosed();
    assert.match(
      polite.text,
      /^220-mx\.test\.example ESMTP\r\n220 mx\.test\.example ESMTP\r\n250-mx\.test\.example Hello mail\.example\.net \[127\.0\.0\.91\]\r\n/,
    );

    const bot = await RawClient.open(server.port, "127.0.0.92");
    await bot.until(/^220-/);
    bot.write("EHLO bot\r\n");
    await bot.waitClosed(3000);
    await server.waitForLine(/event=PREGREET client=127\.0\.0\.92:.* action=ban$/);
    const again = await RawClient.open(server.port, "127.0.0.92");
    await again.waitClosed(3000);
    assert.match(again.text, /^554 5\.7\.1 /);

    // The CLI of the same binary, from another directory, on the store the server made in its own.
    const bans = await run(mxscreen, ["ban", "ls", "--json"], tempDir(), { MXSCREEN_DB_URL: `file:${join(dir, "data", "mxscreen.db")}` });
    assert.equal(bans.code, 0, bans.stderr);
    assert.match(bans.stdout, /127\.0\.0\.92\/32/);

    assert.equal(await server.stop(), 0, server.stderr.join(""));
    assert.match(server.lines.at(-1) ?? "", /msg=stopped/);
  },
  E2E,
);

test("the single binary starts the other processes of MXSCREEN_PROCESSES as itself", async () => {
  const mxscreen = await binary();
  const server = await startServer({ MXSCREEN_PROCESSES: "2" }, { command: { command: mxscreen, args: ["serve"] } });
  await server.waitForLine(/msg="mxscreen started" .* process=2\/2 /);
  const client = await RawClient.greeted(server.port, "127.0.0.93");
  client.write("QUIT\r\n");
  await client.waitClosed();
  assert.equal(await server.stop(), 0, server.stderr.join(""));
}, E2E);
