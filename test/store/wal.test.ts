import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { parsePrefix } from "../../src/ip/address.ts";
import { Store } from "../../src/store/store.ts";
import { findWalDamage } from "../../src/store/wal-check.ts";
import { test } from "../harness.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { type RunningServer, startServer, tempDir } from "../helpers/server.ts";
import { cli } from "../helpers/cli.ts";
import { eventually } from "../helpers/eventually.ts";

const E2E = { timeoutMs: 60_000 };

/**
 * Pregreet bans for `sources`, one connection (and so one transaction) each, until the database
 * has them. Asked through the CLI, a process of its own: a connection of this process, closed
 * whenever its finalizer runs, would be the file's last one after a kill -9 and checkpoint or
 * remove the log the test is about to look at.
 */
async function ban(server: RunningServer, sources: string[]): Promise<void> {
  for (const source of sources) {
    const bot = await RawClient.open(server.port, source);
    await bot.until(/^220-/);
    bot.write("EHLO bot\r\n");
    await bot.waitClosed();
  }
  await eventually(`${sources.join(", ")} banned in the database`, async () => {
    const listed = (await cli(server.dbUrl, ["ban", "ls"], server.dir)).stdout;
    return sources.every((source) => listed.includes(`${source}/32`));
  });
}

async function killHard(server: RunningServer): Promise<void> {
  const exited = new Promise((resolve) => server.process.once("exit", resolve));
  process.kill(server.process.pid!, "SIGKILL");
  await exited;
}

async function refused(dir: string): Promise<string> {
  return await startServer({}, { dir }).then(
    () => assert.fail("the server started on a damaged database"),
    (error: Error) => error.message,
  );
}

test("after a clean stop the -wal file is empty: everything is in the database file", async () => {
  const server = await startServer({ MXSCREEN_GREET_WAIT: "2s" });
  await ban(server, ["127.0.41.1", "127.0.41.2"]);
  const wal = join(server.dir, "mxscreen.db-wal");
  assert.ok(statSync(wal).size > 0, "the log holds the writes while the node runs");
  assert.equal(await server.stop(), 0);
  assert.equal(existsSync(wal) ? statSync(wal).size : 0, 0);
  const again = await startServer({}, { dir: server.dir });
  const bot = await RawClient.open(again.port, "127.0.41.2");
  await bot.waitClosed();
  assert.match(bot.text, /^554 /, "the bans are there after the restart");
}, E2E);

test("after kill -9 the log is replayed; a log damaged before committed bans stops start-up with the file and what to do", async () => {
  const server = await startServer({ MXSCREEN_GREET_WAIT: "2s" });
  await ban(server, ["127.0.42.1", "127.0.42.2", "127.0.42.3"]);
  await killHard(server);
  const walPath = join(server.dir, "mxscreen.db-wal");
  assert.ok(statSync(walPath).size > 32, "kill -9 left the writes in the log");
  const restarted = await startServer({}, { dir: server.dir });
  const bot = await RawClient.open(restarted.port, "127.0.42.3");
  await bot.waitClosed();
  assert.match(bot.text, /^554 /, "the bans came back from the log");
  // Several transactions after the restart, whatever the log's generation: damage before them is then damage, not a crash's leftover.
  await ban(restarted, ["127.0.42.4", "127.0.42.5", "127.0.42.6", "127.0.42.7", "127.0.42.8"]);
  await killHard(restarted);

  const log = readFileSync(walPath);
  const pageSize = log.readUInt32BE(8);
  assert.ok(log.length >= 32 + 3 * (24 + pageSize), "several frames to damage one of");
  log[32 + 24 + 100] ^= 0xff;
  writeFileSync(walPath, log);
  const message = await refused(server.dir);
  assert.match(
    message,
    /mxscreen: cannot open the store at file:.*mxscreen\.db: its write-ahead log .*mxscreen\.db-wal is damaged at frame 1 of \d+: SQLite would silently leave out the \d+ transactions committed after it \(bans among them\), so mxscreen does not start on it\. .*restore a backup, or move .*mxscreen\.db-wal away/,
  );
}, E2E);

test("a damaged database file stops start-up (quick_check) instead of screening with a list it cannot trust", async () => {
  const server = await startServer({ MXSCREEN_GREET_WAIT: "2s" });
  await ban(server, ["127.0.43.1"]);
  assert.equal(await server.stop(), 0);
  const dbPath = join(server.dir, "mxscreen.db");
  const db = readFileSync(dbPath);
  const pageSize = db.readUInt16BE(16) === 1 ? 65536 : db.readUInt16BE(16);
  for (let page = 1; page * pageSize < db.length; page++) db.fill(0x5a, page * pageSize + 8, page * pageSize + 64);
  writeFileSync(dbPath, db);
  const message = await refused(server.dir);
  assert.match(
    message,
    /the database file .*mxscreen\.db is damaged \(quick_check: .+\), so mxscreen does not start on a list it cannot trust\. Restore a backup, or recover it with: sqlite3 /,
  );
}, E2E);

test("the log check tells damage from what a crash or a restarted log leaves: only frames before committed transactions count", async () => {
  const dir = tempDir();
  const store = await Store.open({ url: `file:${join(dir, "db.db")}`, node: "a" }, () => {});
  for (let n = 0; n < 3; n++) {
    store.set("ban", { prefix: parsePrefix(`192.0.2.${n}`)!, ttlMs: 60_000 }, Date.now());
    await store.flush();
  }
  const wal = readFileSync(join(dir, "db.db-wal"));
  await store.close();
  const pageSize = wal.readUInt32BE(8);
  const frameSize = 24 + pageSize;
  const frames = (wal.length - 32) / frameSize;
  const check = (bytes: Uint8Array) => {
    const path = join(dir, `copy-${Math.random()}.db-wal`);
    writeFileSync(path, bytes);
    return findWalDamage(path);
  };
  assert.equal(check(wal), undefined, "an intact log");
  const flip = (frame: number) => {
    const copy = Buffer.from(wal);
    copy[32 + (frame - 1) * frameSize + 24 + 7] ^= 0x01;
    return copy;
  };
  assert.equal(check(flip(frames)), undefined, "the last transaction's frame: what a crash in mid-write leaves");
  const damage = check(flip(1));
  assert.equal(damage?.frame, 1);
  assert.ok((damage?.lostCommits ?? 0) >= 3, JSON.stringify(damage));
  const older = Buffer.concat([wal, Buffer.from(wal.subarray(32, 32 + frameSize)).fill(0x11, 8, 16)]);
  assert.equal(check(older), undefined, "frames of an earlier generation (other salts) end the log, as for SQLite");
  const header = Buffer.from(wal);
  header[12] ^= 0xff;
  assert.equal(check(header)?.frame, 0, "a damaged header loses the whole log");
  assert.equal(check(wal.subarray(0, 32)), undefined, "an empty log");
});
