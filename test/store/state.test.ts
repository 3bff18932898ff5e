import assert from "node:assert/strict";
import { createClient } from "@libsql/client";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseIP, parsePrefix } from "../../src/ip/address.ts";
import { explain } from "../../src/store/explain.ts";
import { Store, type StoreOptions } from "../../src/store/store.ts";
import { onCleanup, test } from "../harness.ts";
import { startCountingProxy } from "../helpers/counting-proxy.ts";
import { ROOT, tempDir } from "../helpers/server.ts";
import { startSqld } from "../helpers/sqld.ts";

const INFO = { runtime: "test", listen: "-", startedAt: Date.now() };

async function open(options: Partial<StoreOptions> & { url: string; node: string }): Promise<{ store: Store; errors: Error[] }> {
  const errors: Error[] = [];
  const store = await Store.open(options, (e) => errors.push(e));
  onCleanup(() => store.close());
  return { store, errors };
}

async function rows(url: string, sql: string) {
  const client = createClient({ url });
  try {
    return (await client.execute(sql)).rows;
  } finally {
    client.close();
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("a database made by the earlier migrations, with history in it, moves over: one row per entry in force, the same bans, explain still tells the story", async () => {
  const url = `file:${join(tempDir(), "old.db")}`;
  const client = createClient({ url });
  const earlier = readdirSync(join(ROOT, "migrations")).filter((name) => name.endsWith(".sql") && name < "0006").sort();
  assert.deepEqual(earlier, [
    "0001_lists_and_events.sql",
    "0002_greylist.sql",
    "0003_fleet.sql",
    "0004_limit_tags.sql",
    "0005_fleet_counters_nudges.sql",
  ]);
  await client.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)");
  for (const name of earlier) {
    await client.executeMultiple(readFileSync(join(ROOT, "migrations", name), "utf8"));
    await client.execute({ sql: "INSERT INTO schema_migrations VALUES (?, 0)", args: [name] });
  }
  const now = Date.now();
  const change = (kind: string, prefix: string, op: string, at: number, expires: number | null, reason: string) =>
    client.execute({
      sql:
        "INSERT INTO list_changes (kind, prefix, op, created_at, expires_at, node, check_id, reason, evidence, op_id) VALUES (?, ?, ?, ?, ?, 'old', 'manual', ?, NULL, ?)",
      args: [kind, prefix, op, at, expires, reason, crypto.randomUUID()],
    });
  await change("ban", "192.0.2.7/32", "set", now - 5000, null, "first");
  await change("ban", "192.0.2.7/32", "set", now - 4000, null, "again");
  await change("ban", "198.51.100.0/24", "set", now - 3000, null, "lifted later");
  await change("ban", "198.51.100.0/24", "remove", now - 2000, null, "lifted");
  // Arrived late, older than the removal: stays lifted.
  await change("ban", "198.51.100.0/24", "set", now - 2500, null, "late");
  await change("pass", "2001:db8:1:2::/64", "set", now - 1000, now + 60_000, "passed");
  await change("ban", "203.0.113.9/32", "set", now - 1000, now - 500, "expired");
  client.close();

  const { store, errors } = await open({ url, node: "new" });
  const lists = await rows(url, "SELECT kind, prefix, op, reason FROM lists ORDER BY kind, prefix");
  assert.deepEqual(lists.map((r) => `${r.kind} ${r.prefix} ${r.op} ${r.reason}`), [
    "ban 192.0.2.7/32 set again",
    "ban 198.51.100.0/24 remove lifted",
    "ban 203.0.113.9/32 set expired",
    "pass 2001:db8:1:2::/64 set passed",
  ]);
  assert.equal(store.lookup(parseIP("192.0.2.7")!, now).ban?.reason, "again");
  assert.equal(store.lookup(parseIP("198.51.100.1")!, now).ban, undefined);
  assert.equal(store.lookup(parseIP("203.0.113.9")!, now).ban, undefined);
  assert.ok(store.lookup(parseIP("2001:db8:1:2::99")!, now).pass);
  assert.equal(store.inForce("ban"), 1);
  assert.deepEqual((await store.list("ban", now)).map((r) => r.prefix), ["192.0.2.7/32"]);
  const story = await explain(store.db, parseIP("198.51.100.1")!);
  assert.deepEqual(story.lists.map((c) => `${c.op} ${c.reason}`), ["set lifted later", "remove lifted", "set late"]);
  // What a node of the new version writes keeps the state in step, through the trigger.
  store.set("ban", { prefix: parsePrefix("198.51.100.0/24")!, ttlMs: null, reason: "back" }, Date.now());
  await store.flush();
  assert.deepEqual((await rows(url, "SELECT op, reason FROM lists WHERE prefix = '198.51.100.0/24'")).map((r) => `${r.op} ${r.reason}`), [
    "set back",
  ]);
  assert.deepEqual(errors, []);
});

test("housekeeping by one node at a time: expired entries and old events swept, the change log trimmed once every live node read it, sizes for /metrics", async () => {
  const sqld = await startSqld();
  const retention = { eventsMs: 86_400_000, eventsMaxRows: 3 };
  const a = await open({ url: sqld.url, node: "a", queueFile: join(tempDir(), "a.jsonl"), retention });
  const b = await open({ url: sqld.url, node: "b", queueFile: join(tempDir(), "b.jsonl"), retention });
  const now = Date.now();
  a.store.set("ban", { prefix: parsePrefix("192.0.2.1")!, ttlMs: 1 }, now - 1000);
  a.store.set("ban", { prefix: parsePrefix("192.0.2.2")!, ttlMs: null }, now);
  for (let i = 0; i < 6; i++) {
    a.store.recordEvent({
      at: i < 2 ? now - 2 * 86_400_000 : now - i,
      clientIp: "192.0.2.3",
      clientPort: 1,
      event: "PREGREET",
      action: "ban",
      evidence: {},
    });
  }
  a.store.writeGreylist({ triplet: "old", first_seen: now - 10_000, passed_at: null, expires_at: now - 1 });
  a.store.writeGreylist({ triplet: "live", first_seen: now, passed_at: null, expires_at: now + 60_000 });
  await a.store.flush();
  assert.equal((await rows(sqld.url, "SELECT count(*) AS n FROM list_changes"))[0].n, 2);

  // b follows and beats (read position written); a follows next and does the housekeeping.
  b.store.follow({ fastMs: 50, idleMs: 50 }, INFO);
  await until("b has read both changes", () => b.store.lookup(parseIP("192.0.2.2")!, Date.now()).ban !== undefined);
  await until("b's housekeeping counted the tables", () => b.store.tableRows().events !== undefined);
  assert.ok(
    Number((await rows(sqld.url, "SELECT read_seq FROM nodes WHERE name = 'b'"))[0].read_seq) >= 2,
    "b's read position is in the nodes table",
  );
  a.store.follow({ fastMs: 50, idleMs: 50 }, INFO);
  await until("a read the sizes b counted", () => a.store.tableRows().events !== undefined);
  assert.deepEqual(
    (await rows(sqld.url, "SELECT holder FROM leases")).map((r) => r.holder),
    ["b"],
    "b took the lease first; a leaves it alone",
  );
  assert.deepEqual(
    (await rows(sqld.url, "SELECT prefix FROM lists")).map((r) => r.prefix),
    ["192.0.2.2/32"],
    "the expired ban is swept from the database",
  );
  assert.deepEqual(
    (await rows(sqld.url, "SELECT seq FROM list_changes")).map((r) => Number(r.seq)),
    [2],
    "read by every live node: trimmed, the newest row kept",
  );
  assert.equal((await rows(sqld.url, "SELECT count(*) AS n FROM events"))[0].n, 3, "older than the retention, then past the row cap");
  assert.deepEqual((await rows(sqld.url, "SELECT triplet FROM greylist")).map((r) => r.triplet), ["live"]);
  assert.deepEqual(
    a.store.tableRows(),
    { list_changes: 1, lists: 1, events: 3, greylist: 1, nodes: 1 },
    "every node reads the sizes the housekeeper counted",
  );
  await sqld.stop();
});

test("a node that fell behind a trimmed change log reloads the lists in force, removals included", async () => {
  const url = `file:${join(tempDir(), "trim.db")}`;
  const retention = { eventsMs: 86_400_000, eventsMaxRows: 1000 };
  const a = await open({ url, node: "a", retention });
  const now = Date.now();
  a.store.set("ban", { prefix: parsePrefix("192.0.2.50")!, ttlMs: null }, now);
  await a.store.flush();
  // Loads the ban, then reads nothing while it is removed and another is made, and the log trimmed.
  const late = await open({ url, node: "late" });
  assert.ok(late.store.lookup(parseIP("192.0.2.50")!, now).ban);
  a.store.remove("ban", parsePrefix("192.0.2.50")!, now + 1);
  a.store.set("ban", { prefix: parsePrefix("192.0.2.51")!, ttlMs: null }, now + 1);
  await a.store.flush();
  a.store.follow({ fastMs: 50, idleMs: 50 }, INFO);
  await until("the log is trimmed", async () => Number((await rows(url, "SELECT count(*) AS n FROM list_changes"))[0].n) === 1);
  late.store.follow({ fastMs: 50, idleMs: 50 }, INFO);
  await until("the node that fell behind has the new ban", () => late.store.lookup(parseIP("192.0.2.51")!, Date.now()).ban !== undefined);
  assert.equal(late.store.lookup(parseIP("192.0.2.50")!, Date.now()).ban, undefined, "and the removal it never read in the log");
});

test("following costs little while nothing changes, snaps back on a change, and wake() reads at once", async () => {
  const sqld = await startSqld();
  const proxy = await startCountingProxy(sqld.port);
  onCleanup(() => proxy.stop());
  const writer = await open({ url: sqld.url, node: "writer", queueFile: join(tempDir(), "w.jsonl") });
  const follower = await open({ url: proxy.url, node: "follower", queueFile: join(tempDir(), "f.jsonl") });
  follower.store.follow({ fastMs: 50, idleMs: 800 }, INFO);
  await new Promise((r) => setTimeout(r, 1000));
  proxy.reset();
  await new Promise((r) => setTimeout(r, 2400));
  const idle = proxy.counts().requests;
  // At the fast pace this would be 48 reads; idle it is three or four (and maybe a heartbeat).
  assert.ok(idle >= 2 && idle <= 6, `idle requests in 2.4 s: ${idle}`);

  const ip = parseIP("192.0.2.77")!;
  writer.store.set("ban", { prefix: { ip, length: 32 }, ttlMs: null }, Date.now());
  await writer.store.flush();
  const written = Date.now();
  follower.store.wake();
  await until("the ban after wake()", () => follower.store.lookup(ip, Date.now()).ban !== undefined, 2000);
  const woken = Date.now() - written;
  assert.ok(woken < 400, `seen ${woken} ms after the write, with the pace at 800 ms`);
  proxy.reset();
  await new Promise((r) => setTimeout(r, 400));
  assert.ok(proxy.counts().requests >= 2, `back at the fast pace after a change: ${proxy.counts().requests} reads in 400 ms`);
  assert.deepEqual(follower.errors, []);
  await sqld.stop();
});
