import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fcrdnsHeader } from "../../src/delivery/received.ts";
import { Spool } from "../../src/delivery/spool.ts";
import type { MessageContext } from "../../src/delivery/types.ts";
import { onCleanup, test } from "../harness.ts";
import { tempDir } from "../helpers/server.ts";
import { fill, free, smallDisk } from "../helpers/small-disk.ts";

const context: MessageContext = {
  envelope: {
    helo: "client.example",
    protocol: "ESMTP",
    from: "a@example.net",
    recipients: ["b@example.org"],
    declaredSize: undefined,
    reverseDns: undefined,
  },
  clientAddress: "192.0.2.1",
  receivedAt: new Date("2026-11-23T00:41:34Z"),
  hostname: "mx.test.example",
};

test("a message goes tmp/ then new/, with Received naming the client's HELO and address", async () => {
  const dir = tempDir();
  const spool = new Spool(dir, 1234);
  await spool.prepare();
  const message = spool.begin(context);
  message.write(new TextEncoder().encode("Subject: hi\r\n\r\nbody\r\n"));
  assert.deepEqual(readdirSync(join(dir, "new")), [], "nothing in new/ before finish");
  const result = await message.finish();
  assert.deepEqual(result, { ok: true, id: message.id });
  assert.deepEqual(readdirSync(join(dir, "tmp")), []);
  const files = readdirSync(join(dir, "new"));
  assert.equal(files.length, 1);
  const text = readFileSync(join(dir, "new", files[0]), "utf8");
  assert.equal(
    text,
    "Return-Path: <a@example.net>\nDelivered-To: b@example.org\n" +
      `Received: from client.example ([192.0.2.1])\n\tby mx.test.example (mxscreen) with ESMTP id ${message.id}\n\tfor <b@example.org>;\n` +
      "\tMon, 23 Nov 2026 00:41:34 +0000\nX-Mxscreen-FCrDNS: temperror (no answer yet); client=[192.0.2.1]\nSubject: hi\n\nbody\n",
  );
});

test("X-Mxscreen-FCrDNS says pass with the confirmed name, fail with the PTR names cleaned of anything but host name characters", () => {
  const withReverse = (reverseDns: MessageContext["envelope"]["reverseDns"]) =>
    fcrdnsHeader({ ...context, envelope: { ...context.envelope, reverseDns } });
  assert.equal(
    withReverse({ status: "pass", name: "client.example.net" }),
    "X-Mxscreen-FCrDNS: pass (client.example.net); client=[192.0.2.1]\r\n",
  );
  assert.equal(
    withReverse({ status: "fail", names: ["a.example", "b\r\nX-Evil: 1"] }),
    "X-Mxscreen-FCrDNS: fail (ptr a.example b??X-Evil??1); client=[192.0.2.1]\r\n",
  );
  assert.equal(withReverse({ status: "none" }), "X-Mxscreen-FCrDNS: none; client=[192.0.2.1]\r\n");
});

test("an aborted message leaves nothing in tmp/ or new/", async () => {
  const dir = tempDir();
  const message = new Spool(dir, 1).begin(context);
  message.write(new TextEncoder().encode("partial\r\n"));
  await message.abort();
  assert.deepEqual(readdirSync(join(dir, "tmp")), []);
  assert.deepEqual(readdirSync(join(dir, "new")), []);
});

test("a spool that cannot be written answers a temporary failure", async () => {
  const dir = tempDir();
  const file = join(dir, "not-a-dir");
  await import("node:fs/promises").then((fs) => fs.writeFile(file, "x"));
  const message = new Spool(file, 1).begin(context);
  message.write(new TextEncoder().encode("x\r\n"));
  const result = await message.finish();
  assert.equal(result.ok, false);
  assert.equal(!result.ok && result.temporary, true);
});

test(
  "a disk with room for part of a message: a temporary failure, nothing in new/ or tmp/, never a truncated message accepted",
  async () => {
    const disk = smallDisk(1024);
    const spool = new Spool(disk, 1);
    await spool.prepare();
    const room = join(disk, "room");
    writeFileSync(room, new Uint8Array(8192));
    const filler = fill(disk);
    rmSync(room);
    for (const size of [20_000, 200_000]) {
      const message = spool.begin(context);
      const body = `Subject: big\r\n\r\n${"y".repeat(78)}\r\n`.repeat(Math.ceil(size / 80));
      message.write(new TextEncoder().encode(body));
      const result = await message.finish();
      assert.equal(result.ok, false, `a ${size}-byte message on a disk with 8 KiB free`);
      assert.equal(!result.ok && result.temporary, true);
      assert.match(!result.ok ? result.reason : "", /^spool write failed \(.*(ENOSPC|[Nn]o space).*\)$/);
      assert.deepEqual(readdirSync(join(disk, "new")), []);
      assert.deepEqual(readdirSync(join(disk, "tmp")), []);
    }
    free(filler);
    const message = spool.begin(context);
    message.write(new TextEncoder().encode("Subject: ok\r\n\r\nbody\r\n"));
    assert.equal((await message.finish()).ok, true, "space again: messages are accepted again");
  },
  { timeoutMs: 20_000 },
);

test("a message aborted while the spool cannot even create its file ends quietly", async () => {
  const dir = tempDir();
  const file = join(dir, "not-a-dir");
  writeFileSync(file, "x");
  const message = new Spool(file, 1).begin(context);
  await message.abort();
});

test("at start, files a crash left in tmp/ more than 36 hours ago are removed; younger ones, maybe still being written, stay", async () => {
  const dir = tempDir();
  mkdirSync(join(dir, "tmp"), { recursive: true });
  const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000);
  for (const [name, age] of [["old", 37], ["recent", 35], ["fresh", 0]] as const) {
    writeFileSync(join(dir, "tmp", name), "partial message after kill -9\n");
    utimesSync(join(dir, "tmp", name), hoursAgo(age), hoursAgo(age));
  }
  await new Spool(dir, 1).prepare();
  assert.deepEqual(readdirSync(join(dir, "tmp")).sort(), ["fresh", "recent"]);
});

test("spooled messages are readable by their owner only", async () => {
  const dir = tempDir();
  const message = new Spool(dir, 1).begin(context);
  message.write(new TextEncoder().encode("Subject: private\r\n\r\nbody\r\n"));
  assert.equal((await message.finish()).ok, true);
  const [name] = readdirSync(join(dir, "new"));
  assert.equal(statSync(join(dir, "new", name)).mode & 0o777, 0o600);
});

test("a spool file that cannot be created fails that message, never the process, however late the message ends", async () => {
  const unheard: unknown[] = [];
  const listener = (reason: unknown) => void unheard.push(reason);
  process.on("unhandledRejection", listener);
  onCleanup(() => void process.off("unhandledRejection", listener));
  const dir = tempDir();
  const file = join(dir, "not-a-dir");
  writeFileSync(file, "x");
  const spool = new Spool(file, 1);
  const late = spool.begin(context);
  const dropped = spool.begin(context);
  await new Promise((r) => setTimeout(r, 200));
  late.write(new TextEncoder().encode("Subject: slow client\r\n\r\nbody\r\n"));
  const result = await late.finish();
  assert.equal(!result.ok && result.temporary, true);
  await dropped.abort();
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(unheard.map(String), []);
});

test("a client faster than the disk is asked to wait: congested past 1 MiB waiting, released once the disk caught up", async () => {
  const spool = new Spool(tempDir(), 1234);
  await spool.prepare();
  const signals: boolean[] = [];
  const message = spool.begin(context, (yes) => signals.push(yes));
  const line = new TextEncoder().encode("x".repeat(998) + "\r\n");
  for (let i = 0; i < 4096; i++) message.write(line);
  assert.deepEqual(signals, [true], "4 MiB handed over in one go is more than the disk took");
  assert.equal((await message.finish()).ok, true);
  assert.deepEqual(signals, [true, false]);
});
