import assert from "node:assert/strict";
import { createClient } from "@libsql/client";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parsePrefix } from "../../src/ip/address.ts";
import { Store } from "../../src/store/store.ts";
import { type WriteOp, WriteQueue } from "../../src/store/write-queue.ts";
import { onCleanup, test } from "../harness.ts";
import { freePort, tempDir } from "../helpers/server.ts";

const op = (n: number): WriteOp => ({ id: `op-${n}`, table: "events", row: { n } });

test("writes wait in the journal while the database is away and are written in order when it is back", async () => {
  const journal = join(tempDir(), "q", "queue.jsonl");
  const applied: string[] = [];
  let up = false;
  const errors: string[] = [];
  const queue = new WriteQueue(journal, async (ops) => {
    if (!up) throw new Error("connection refused");
    applied.push(...ops.map((o) => o.id));
  }, (e) => errors.push(e.message));
  onCleanup(() => queue.close());
  queue.push(op(1));
  queue.push(op(2));
  assert.equal(await queue.flush(300), false);
  assert.equal(queue.state.reachable, false);
  assert.equal(queue.state.length, 2);
  assert.equal(readFileSync(journal, "utf8").trim().split("\n").length, 2, "both writes are on disk");
  up = true;
  queue.push(op(3));
  assert.equal(await queue.flush(10_000), true);
  assert.deepEqual(applied, ["op-1", "op-2", "op-3"]);
  assert.equal(readFileSync(journal, "utf8"), "", "the journal is emptied once everything is written");
  assert.match(errors[0], /^store write failed, keeping 2 writes queued in .*queue\.jsonl and retrying: connection refused$/);
});

test("a process that stops with writes pending replays them from the journal at its next start", async () => {
  const journal = join(tempDir(), "queue.jsonl");
  const first = new WriteQueue(journal, () => Promise.reject(new Error("down")), () => {});
  first.push(op(1));
  first.push(op(2));
  first.close();
  const applied: string[] = [];
  const second = new WriteQueue(journal, async (ops) => void applied.push(...ops.map((o) => o.id)), () => {});
  onCleanup(() => second.close());
  assert.equal(second.state.length, 2);
  second.start();
  assert.equal(await second.flush(5000), true);
  assert.deepEqual(applied, ["op-1", "op-2"]);
});

test("a replayed write is applied once: the database ignores an op id it already has", async () => {
  const dir = tempDir();
  const url = `file:${join(dir, "db.db")}`;
  const journal = join(dir, "queue.jsonl");
  const store = await Store.open({ url, node: "a", queueFile: journal }, () => {});
  store.set("ban", { prefix: parsePrefix("192.0.2.44")!, ttlMs: 60_000 }, Date.now());
  const line = readFileSync(journal, "utf8");
  await store.flush();
  await store.close();
  const { writeFileSync } = await import("node:fs");
  writeFileSync(journal, line + line);
  const again = await Store.open({ url, node: "a", queueFile: journal }, () => {});
  assert.equal(await again.flush(), true);
  await again.close();
  const client = createClient({ url });
  const rows = await client.execute("SELECT COUNT(*) AS n FROM list_changes WHERE prefix = '192.0.2.44/32'");
  client.close();
  assert.equal(Number(rows.rows[0].n), 1);
  assert.ok(existsSync(journal));
});

test("the CLI's store (no journal) reports a database it cannot reach instead of pretending", async () => {
  const port = await freePort();
  await assert.rejects(Store.open({ url: `http://127.0.0.1:${port}`, node: "cli", index: false }, () => {}), /cannot open the store/);
});
