import assert from "node:assert/strict";
import { createClient } from "@libsql/client";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parsePrefix } from "../../src/ip/address.ts";
import { Store } from "../../src/store/store.ts";
import { type WriteOp, WriteQueue } from "../../src/store/write-queue.ts";
import { onCleanup, test } from "../harness.ts";
import { freePort, tempDir } from "../helpers/server.ts";
import { fill, free, smallDisk } from "../helpers/small-disk.ts";

const op = (n: number, at = Date.now()): WriteOp => ({
  id: `op-${n}`,
  table: "events",
  row: {
    at,
    node: "a",
    client_ip: "192.0.2.1",
    client_port: 1000 + n,
    event: "PREGREET",
    check_id: "pregreet",
    action: "ban",
    evidence: "{}",
  },
});

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

test("a write after a quiet spell reaches the database at once; a burst goes in few transactions, in order", async () => {
  const batches: string[][] = [];
  const queue = new WriteQueue(join(tempDir(), "queue.jsonl"), async (ops) => void batches.push(ops.map((o) => o.id)), () => {}, {
    batchGapMs: 1_000,
  });
  onCleanup(() => queue.close());
  queue.push(op(1));
  await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(batches, [["op-1"]], "the lone write did not wait for the gap");
  // One write per turn of the event loop, as verdicts come: without the gap, one transaction each.
  for (let n = 2; n <= 11; n++) {
    queue.push(op(n));
    await new Promise((r) => setTimeout(r, 1));
  }
  assert.equal(await queue.flush(10_000), true);
  assert.deepEqual(batches.flat(), Array.from({ length: 11 }, (_, i) => `op-${i + 1}`));
  assert.ok(batches.length <= 3, `a burst of 10 writes took ${batches.length - 1} transactions`);
});

test("verdict events alone wait for the longer gap and go together; a ban pushed meanwhile goes at the short gap and takes them along", async () => {
  const batches: string[][] = [];
  const queue = new WriteQueue(join(tempDir(), "queue.jsonl"), async (ops) => void batches.push(ops.map((o) => o.id)), () => {}, {
    batchGapMs: 10,
    eventGapMs: 300,
  });
  onCleanup(() => queue.close());
  const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
  queue.push(op(1));
  await wait(5);
  assert.deepEqual(batches, [["op-1"]], "an event after a quiet spell goes at once");
  queue.push(op(2));
  await wait(40);
  queue.push(op(3));
  await wait(40);
  assert.deepEqual(batches, [["op-1"]], "events of clean sessions wait for the longer gap, not the short one");
  const ban: WriteOp = {
    id: "ban-4",
    table: "list_changes",
    row: { kind: "ban", prefix: "192.0.2.4/32", op: "set", created_at: Date.now(), expires_at: null, node: "a" },
  };
  queue.push(ban);
  await wait(5);
  assert.deepEqual(batches, [["op-1"], ["op-2", "op-3", "ban-4"]], "a ban does not wait behind them, and they go with it");
  queue.push(op(5));
  assert.equal(await queue.flush(100), true, "flush does not wait for the longer gap (300 ms)");
  assert.deepEqual(batches.at(-1), ["op-5"]);
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

test(
  "a full journal disk never fails a write: writes wait in memory, counted, logged once, and reach the journal and the database when space returns",
  async () => {
    const disk = smallDisk(64);
    const journal = join(disk, "queue.jsonl");
    let up = false;
    const applied: string[] = [];
    const errors: string[] = [];
    const queue = new WriteQueue(
      journal,
      async (ops) => {
        if (!up) throw new Error("database away");
        applied.push(...ops.map((o) => o.id));
      },
      (e) => errors.push(e.message),
      { journalRetryMs: 50 },
    );
    onCleanup(() => queue.close());
    const filler = fill(disk);
    for (let n = 1; n <= 40; n++) queue.push(op(n));
    assert.equal(queue.state.length, 40);
    assert.equal(queue.state.memoryOnly, 40, "everything is held in memory only");
    assert.match(queue.state.journalError ?? "", /ENOSPC|no space/i);
    await new Promise((r) => setTimeout(r, 100));
    queue.push(op(41));
    const journalErrors = errors.filter((e) => e.startsWith("cannot write the store journal"));
    assert.equal(journalErrors.length, 1, `logged once for the episode, not per write: ${errors.join("\n")}`);
    assert.match(journalErrors[0], /queue\.jsonl \(.*\): writes wait in memory \(at most 100000, then the oldest events go first\)/);
    assert.equal(readFileSync(journal, "utf8"), "", "no partial line");

    free(filler);
    await new Promise((r) => setTimeout(r, 100));
    queue.push(op(42));
    assert.equal(queue.state.memoryOnly, 0);
    assert.equal(queue.state.journalError, undefined);
    assert.deepEqual(
      readFileSync(journal, "utf8").trim().split("\n").map((l) => JSON.parse(l).id),
      Array.from({ length: 42 }, (_, i) => `op-${i + 1}`),
    );
    assert.ok(
      errors.some((e) => /^store journal .*queue\.jsonl writable again: 42 writes held in memory are on disk again$/.test(e)),
      errors.join("\n"),
    );
    up = true;
    assert.equal(await queue.flush(10_000), true);
    assert.deepEqual(applied, Array.from({ length: 42 }, (_, i) => `op-${i + 1}`));
  },
  { timeoutMs: 30_000 },
);

test("a journal on a read-only disk: writes wait in memory and the database still gets them in order", async () => {
  const disk = smallDisk(64);
  const journal = join(disk, "queue.jsonl");
  execFileSync("mount", ["-o", "remount,ro", disk]);
  const applied: string[] = [];
  const errors: string[] = [];
  const queue = new WriteQueue(journal, async (ops) => void applied.push(...ops.map((o) => o.id)), (e) => errors.push(e.message));
  onCleanup(() => queue.close());
  for (let n = 1; n <= 5; n++) queue.push(op(n));
  assert.match(queue.state.journalError ?? "", /EROFS|read-only/i);
  assert.equal(await queue.flush(10_000), true);
  assert.deepEqual(applied, ["op-1", "op-2", "op-3", "op-4", "op-5"]);
  assert.equal(queue.state.memoryOnly, 0);
  assert.equal(errors.filter((e) => e.startsWith("cannot write the store journal")).length, 1, errors.join("\n"));
}, { timeoutMs: 30_000 });

test("past the cap the oldest events go first, bans and allow entries are kept, and the drops are counted and logged once", async () => {
  let up = false;
  const applied: WriteOp[] = [];
  const errors: string[] = [];
  const queue = new WriteQueue(
    undefined,
    async (ops) => {
      if (!up) throw new Error("database away");
      applied.push(...ops);
    },
    (e) => errors.push(e.message),
    { cap: 20 },
  );
  onCleanup(() => queue.close());
  const list = (n: number, kind: string): WriteOp => ({
    id: `${kind}-${n}`,
    table: "list_changes",
    row: {
      kind,
      prefix: `192.0.2.${n}/32`,
      op: "set",
      created_at: Date.now(),
      expires_at: null,
      node: "a",
      check_id: null,
      reason: null,
      evidence: null,
    },
  });
  for (let n = 1; n <= 5; n++) queue.push(list(n, "ban"));
  queue.push(list(6, "allow"));
  for (let n = 1; n <= 100; n++) queue.push(op(n));
  assert.ok(queue.state.length <= 20, `${queue.state.length} writes wait`);
  assert.equal(queue.state.dropped, 106 - queue.state.length);
  assert.equal(errors.filter((e) => e.startsWith("store queue over its cap of 20 writes")).length, 1, errors.join("\n"));
  up = true;
  assert.equal(await queue.flush(10_000), true);
  const ids = applied.map((o) => o.id);
  assert.deepEqual(ids.filter((id) => !id.startsWith("op-")), ["ban-1", "ban-2", "ban-3", "ban-4", "ban-5", "allow-6"]);
  assert.ok(ids.includes("op-100"), "the newest events are kept");
  assert.ok(!ids.includes("op-1"), "the oldest events went first");
  assert.ok(errors.some((e) => e.startsWith(`store queue drained: ${queue.state.dropped} writes were dropped`)), errors.join("\n"));
}, { timeoutMs: 20_000 });

test("the journal is readable by its owner only, also when an earlier run left it wider", async () => {
  const dir = tempDir();
  const journal = join(dir, "queue.jsonl");
  const fresh = new WriteQueue(journal, () => Promise.reject(new Error("down")), () => {});
  fresh.push(op(1));
  fresh.close();
  assert.equal(statSync(journal).mode & 0o777, 0o600);
  const old = join(dir, "old.jsonl");
  writeFileSync(old, "");
  chmodSync(old, 0o666);
  const reopened = new WriteQueue(old, () => Promise.reject(new Error("down")), () => {});
  reopened.close();
  assert.equal(statSync(old).mode & 0o777, 0o600);
});

test("a journal that cannot be read is neither replayed nor overwritten, and the writes still reach the database", async () => {
  const dir = tempDir();
  const journal = join(dir, "queue.jsonl");
  // A directory where the journal should be: reading it fails as an unreadable file does, also for root.
  mkdirSync(journal);
  const applied: string[] = [];
  const errors: string[] = [];
  const queue = new WriteQueue(journal, async (ops) => void applied.push(...ops.map((o) => o.id)), (e) => errors.push(e.message));
  onCleanup(() => queue.close());
  queue.push(op(1));
  assert.equal(await queue.flush(5_000), true);
  assert.deepEqual(applied, ["op-1"]);
  assert.equal(errors.length, 1, errors.join("\n"));
  assert.match(
    errors[0],
    /^cannot read the store journal .*queue\.jsonl \(.*\): the writes it holds from an earlier run are not replayed, and it is left as it is/,
  );
  assert.ok(statSync(journal).isDirectory());
});
