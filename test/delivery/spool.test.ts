import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fcrdnsHeader } from "../../src/delivery/received.ts";
import { Spool } from "../../src/delivery/spool.ts";
import type { MessageContext } from "../../src/delivery/types.ts";
import { test } from "../harness.ts";
import { tempDir } from "../helpers/server.ts";

const context: MessageContext = {
  envelope: { helo: "client.example", protocol: "ESMTP", from: "a@example.net", recipients: ["b@example.org"], declaredSize: undefined, reverseDns: undefined },
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
  const withReverse = (reverseDns: MessageContext["envelope"]["reverseDns"]) => fcrdnsHeader({ ...context, envelope: { ...context.envelope, reverseDns } });
  assert.equal(withReverse({ status: "pass", name: "client.example.net" }), "X-Mxscreen-FCrDNS: pass (client.example.net); client=[192.0.2.1]\r\n");
  assert.equal(withReverse({ status: "fail", names: ["a.example", "b\r\nX-Evil: 1"] }), "X-Mxscreen-FCrDNS: fail (ptr a.example b??X-Evil??1); client=[192.0.2.1]\r\n");
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
