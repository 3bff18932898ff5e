import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { onCleanup, test } from "../harness.ts";
import { eventually } from "../helpers/eventually.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { startServer } from "../helpers/server.ts";
import { fill, free, smallDisk } from "../helpers/small-disk.ts";
import { query } from "../helpers/store-rows.ts";

const E2E = { timeoutMs: 60_000 };

for (const workers of ["0", "2"]) {
  test(
    `on a full disk (journal, database and spool on it) the process stays up, bans apply from memory, a message gets 451, and the writes land when space returns (workers=${workers})`,
    async () => {
      const disk = smallDisk(8 * 1024);
      const server = await startServer({ MXSCREEN_WORKERS: workers, MXSCREEN_GREET_WAIT: "500ms", MXSCREEN_BAN_TTL: "1h" }, {
        dir: disk,
        admin: true,
      });
      const filler = fill(disk);

      const bot = await RawClient.open(server.port, "127.0.31.1");
      await bot.until(/^220-/);
      bot.write("EHLO bot\r\n");
      await bot.waitClosed(5_000);
      await server.waitForLine(/event=PREGREET client=127\.0\.31\.1:\d+ .*action=ban$/);
      await server.waitForLine(
        /level=warn msg="cannot write the store journal .*store-queue\.jsonl \(.*(ENOSPC|[Nn]o space).*\): writes wait in memory/,
      );
      const metrics = await (await fetch(`${server.admin}/metrics`)).text();
      assert.match(metrics, /^mxscreen_store_queue_memory_only [1-9]\d*$/m, "the writes held in memory only are counted");
      const again = await RawClient.open(server.port, "127.0.31.1");
      await again.waitClosed(5_000);
      assert.match(again.text, /^554 5\.7\.1 /, "the ban applies from memory");

      const sender = await RawClient.greeted(server.port, "127.0.31.2");
      await sender.command("EHLO client.example.net", /^250 /m);
      await sender.command("MAIL FROM:<a@example.net>", /^250 /m);
      await sender.command("RCPT TO:<b@example.org>", /^250 /m);
      await sender.command("DATA", /^354 /m);
      const reply = await sender.command(`Subject: full disk\r\n\r\n${"x".repeat(70)}\r\n.`, /^\d{3} .*\r\n/m, 15_000);
      assert.match(reply, /^451 4\.3\.0 /, "never a 250 for a message that could not be stored");
      assert.deepEqual(readdirSync(join(server.spoolDir, "new")), []);
      assert.deepEqual(readdirSync(join(server.spoolDir, "tmp")), [], "nothing half-written is left");
      await sender.command("QUIT", /^221 /m);
      assert.equal(server.process.exitCode, null, "the process is still up");

      free(filler);
      await eventually(
        "the ban and its event reach the database",
        async () =>
          (await query(server.dbUrl, "SELECT 1 FROM list_changes WHERE kind = 'ban' AND prefix = '127.0.31.1/32'")).length === 1 &&
          (await query(server.dbUrl, "SELECT 1 FROM events WHERE client_ip = '127.0.31.1' AND event = 'PREGREET'")).length === 1,
        20_000,
      );
      const later = await RawClient.greeted(server.port, "127.0.31.3");
      await later.command("EHLO client.example.net", /^250 /m);
      await later.command("MAIL FROM:<a@example.net>", /^250 /m);
      await later.command("RCPT TO:<b@example.org>", /^250 /m);
      await later.command("DATA", /^354 /m);
      assert.match(await later.command("Subject: space again\r\n\r\nhello\r\n.", /^\d{3} .*\r\n/m), /^250 /);
      await later.command("QUIT", /^221 /m);
      await server.waitForLine(/msg="store journal .*store-queue\.jsonl writable again: \d+ writes held in memory are on disk again"/);
      assert.equal(server.lines.filter((l) => l.includes("cannot write the store journal")).length, 1, "one warning for the episode");
      assert.ok(server.lines.filter((l) => l.includes("cannot follow the store")).length <= 1, server.lines.join("\n"));
      assert.equal(await server.stop(), 0);
    },
    E2E,
  );
}

test(
  "with the journal and the spool on a read-only disk the process starts and stays up, bans apply, a message gets 451, and the journal is used once the disk is writable",
  async () => {
    const disk = smallDisk(1024);
    const spoolDir = join(disk, "spool");
    for (const sub of ["tmp", "new", "cur"]) mkdirSync(join(spoolDir, sub), { recursive: true });
    execFileSync("mount", ["-o", "remount,ro", disk]);
    let writable = false;
    onCleanup(() => writable || execFileSync("mount", ["-o", "remount,rw", disk]));
    const server = await startServer({
      MXSCREEN_GREET_WAIT: "500ms",
      MXSCREEN_QUEUE_FILE: join(disk, "queue.jsonl"),
      MXSCREEN_SPOOL_DIR: spoolDir,
    });
    await server.waitForLine(
      /level=warn msg="cannot write the store journal .*queue\.jsonl \(.*(EROFS|[Rr]ead-only).*\): writes wait in memory/,
    );

    const bot = await RawClient.open(server.port, "127.0.32.1");
    await bot.until(/^220-/);
    bot.write("EHLO bot\r\n");
    await bot.waitClosed(5_000);
    const again = await RawClient.open(server.port, "127.0.32.1");
    await again.waitClosed(5_000);
    assert.match(again.text, /^554 5\.7\.1 /);
    await eventually(
      "the ban reaches the database",
      async () => (await query(server.dbUrl, "SELECT 1 FROM list_changes WHERE kind = 'ban' AND prefix = '127.0.32.1/32'")).length === 1,
    );

    const dropped = await RawClient.greeted(server.port, "127.0.32.3");
    await dropped.command("EHLO client.example.net", /^250 /m);
    await dropped.command("MAIL FROM:<a@example.net>", /^250 /m);
    await dropped.command("RCPT TO:<b@example.org>", /^250 /m);
    await dropped.command("DATA", /^354 /m);
    dropped.write("Subject: cut off\r\n\r\nthe client goes away mid-message");
    await new Promise((r) => setTimeout(r, 200));
    dropped.socket.destroy();
    await server.waitForLine(/client=127\.0\.32\.3:\d+ /);

    const sender = await RawClient.greeted(server.port, "127.0.32.2");
    await sender.command("EHLO client.example.net", /^250 /m);
    await sender.command("MAIL FROM:<a@example.net>", /^250 /m);
    await sender.command("RCPT TO:<b@example.org>", /^250 /m);
    await sender.command("DATA", /^354 /m);
    assert.match(await sender.command("Subject: read-only\r\n\r\nhello\r\n.", /^\d{3} .*\r\n/m, 15_000), /^451 4\.3\.0 /);
    assert.equal(server.process.exitCode, null, "the process is still up");

    execFileSync("mount", ["-o", "remount,rw", disk]);
    writable = true;
    await new Promise((r) => setTimeout(r, 1_100));
    await sender.command("QUIT", /^221 /m);
    await server.waitForLine(/msg="store journal .*queue\.jsonl writable again/);
    assert.equal(server.lines.filter((l) => l.includes("cannot write the store journal")).length, 1, "one warning for the episode");
    assert.equal(statSync(join(disk, "queue.jsonl")).mode & 0o777, 0o600);
    assert.equal(await server.stop(), 0);
  },
  E2E,
);
