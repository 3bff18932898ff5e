import assert from "node:assert/strict";
import { createClient } from "@libsql/client";
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseIP, parsePrefix } from "../../src/ip/address.ts";
import { LocalCopy } from "../../src/store/local-copy.ts";
import { Store } from "../../src/store/store.ts";
import { onCleanup, test } from "../harness.ts";
import { freePort, ROOT, RUNTIME, runtimeCommand, tempDir } from "../helpers/server.ts";

async function open(url: string, node = "n1"): Promise<Store> {
  const errors: Error[] = [];
  const store = await Store.open({ url, node }, (e) => errors.push(e));
  onCleanup(async () => {
    await store.close();
    assert.deepEqual(errors, []);
  });
  return store;
}

/** Opens the store at `url` in a process of its own, as a node starting; resolves with its exit code and stderr. */
function openElsewhere(url: string, node: string): Promise<{ code: number | null; stderr: string }> {
  const { command, args } = runtimeCommand(RUNTIME, join(ROOT, "test/helpers/open-store.ts"));
  return new Promise((resolve) => {
    const child = spawn(command, [...args, url, node], { stdio: ["ignore", "ignore", "pipe"] });
    onCleanup(() => {
      if (child.exitCode === null) child.kill("SIGKILL");
    });
    let stderr = "";
    child.stderr.on("data", (chunk) => stderr += chunk);
    child.on("close", (code) => resolve({ code, stderr }));
  });
}

// Two processes, as two nodes are: within one process libsql's synchronous calls would make the
// second store's wait for the write lock hold up the first store that holds it.
test("migrations apply once, even when two nodes open one new database at the same moment", async () => {
  const url = `file:${join(tempDir(), "m.db")}`;
  const started = await Promise.all([openElsewhere(url, "a"), openElsewhere(url, "b")]);
  assert.deepEqual(started, [{ code: 0, stderr: "" }, { code: 0, stderr: "" }]);
  await open(url, "c");
  const client = createClient({ url });
  const applied = await client.execute("SELECT name FROM schema_migrations");
  client.close();
  const files = readdirSync(join(ROOT, "migrations")).filter((name) => name.endsWith(".sql")).sort();
  assert.ok(files.includes("0001_lists_and_events.sql"));
  assert.deepEqual(applied.rows.map((r) => r.name), files);
});

test("a ban is in the index at once, in the database after flush, and seen by a second store", async () => {
  const url = `file:${join(tempDir(), "s.db")}`;
  const a = await open(url, "a");
  const b = await open(url, "b");
  const now = Date.now();
  a.set(
    "ban",
    { prefix: parsePrefix("192.0.2.5")!, ttlMs: 60_000, check: "pregreet", reason: "PREGREET", evidence: { sent: "EHLO" } },
    now,
  );
  assert.equal(a.lookup(parseIP("192.0.2.5")!, now).ban?.check, "pregreet");
  await a.flush();
  const rows = await a.list("ban", now);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].node, "a");
  assert.deepEqual(JSON.parse(rows[0].evidence!), { sent: "EHLO" });
  assert.equal(b.lookup(parseIP("192.0.2.5")!, now).ban, undefined);
  b.follow({ fastMs: 50, idleMs: 50 }, { runtime: "test", listen: "-", startedAt: Date.now() });
  const deadline = Date.now() + 3000;
  while (!b.lookup(parseIP("192.0.2.5")!, Date.now()).ban && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(b.lookup(parseIP("192.0.2.5")!, Date.now()).ban?.node, "a");
  a.remove("ban", parsePrefix("192.0.2.5")!, Date.now());
  await a.flush();
  assert.deepEqual(await a.list("ban", Date.now()), []);
});

test("a ban listener that throws is reported, and the ban is in force and written all the same", async () => {
  const url = `file:${join(tempDir(), "l.db")}`;
  const errors: Error[] = [];
  const store = await Store.open({ url, node: "a" }, (e) => errors.push(e));
  onCleanup(() => store.close());
  store.onBanInForce(() => {
    throw new Error("listener broke");
  });
  const now = Date.now();
  store.set("ban", { prefix: parsePrefix("192.0.2.6")!, ttlMs: 60_000, check: "pregreet", reason: "PREGREET", evidence: {} }, now);
  assert.equal(store.lookup(parseIP("192.0.2.6")!, now).ban?.check, "pregreet");
  await store.flush();
  assert.equal((await store.list("ban", now)).length, 1);
  assert.equal(errors.length, 1);
  assert.match(
    errors[0].message,
    /^ending the connections a new ban covers failed \(a bug of ours, please report it\): Error: listener broke/,
  );
});

test("a store reopened on the same file starts with the entries still in force", async () => {
  const url = `file:${join(tempDir(), "r.db")}`;
  const errors: Error[] = [];
  const first = await Store.open({ url, node: "a" }, (e) => errors.push(e));
  const now = Date.now();
  first.set("pass", { prefix: parsePrefix("2001:db8:1:2::/64")!, ttlMs: 60_000 }, now);
  first.set("ban", { prefix: parsePrefix("198.51.100.7")!, ttlMs: 1 }, now - 10);
  await first.close();
  const second = await open(url, "a");
  assert.equal(second.lookup(parseIP("2001:db8:1:2::99")!, now).pass?.prefix, "2001:db8:1:2::/64");
  assert.equal(second.lookup(parseIP("198.51.100.7")!, now).ban, undefined, "expired ban does not apply");
  assert.deepEqual(errors, []);
});

test("a database that cannot be opened or reached fails start-up with the URL and the cause", async () => {
  const dir = tempDir();
  writeFileSync(join(dir, "a-file"), "");
  await assert.rejects(
    Store.open({ url: `file:${join(dir, "a-file", "x.db")}`, node: "a" }, () => {}),
    /cannot open the store at file:.*a-file\/x\.db: .*(ENOTDIR|EEXIST|not a directory)/i,
  );
  const port = await freePort();
  // The CLI, which has no lists to screen with, fails; a node starts without (e2e/local-first).
  await assert.rejects(
    Store.open({ url: `http://127.0.0.1:${port}`, node: "a", index: false }, () => {}),
    new RegExp(`cannot open the store at http://127\\.0\\.0\\.1:${port}: .+`),
  );
  const warnings: string[] = [];
  const node = await Store.open(
    { url: `http://127.0.0.1:${port}`, node: "a", localCopy: join(dir, "lists-copy.bin") },
    (error) => warnings.push(error.message),
  );
  onCleanup(() => node.close(100));
  assert.equal(node.health().listsFrom, "nothing");
  assert.equal(node.health().reachable, false);
  assert.match(
    warnings[0],
    new RegExp(
      `^cannot reach the database at http://127\\.0\\.0\\.1:${port} \\(.+\\), and there is no local copy of the lists at .*lists-copy\\.bin`,
    ),
  );
});

test("a damaged local copy is refused with one line naming it, and the node starts all the same: without lists while the database is away, from the database when it answers", async () => {
  const dir = tempDir();
  const copyPath = join(dir, "lists-copy.bin");
  const url = `file:${join(dir, "d.db")}`;
  const first = await Store.open({ url, node: "a", localCopy: copyPath }, () => {});
  first.set("ban", { prefix: parsePrefix("198.51.100.7")!, ttlMs: null }, Date.now());
  await first.close();
  const good = readFileSync(copyPath);
  const damaged = Buffer.from(good);
  damaged[40] ^= 1;
  writeFileSync(copyPath, damaged);
  const port = await freePort();
  const warnings: string[] = [];
  const away = await Store.open(
    { url: `http://127.0.0.1:${port}`, node: "a", localCopy: copyPath },
    (error) => warnings.push(error.message),
  );
  onCleanup(() => away.close(100));
  assert.equal(away.health().listsFrom, "nothing");
  assert.equal(away.lookup(parseIP("198.51.100.7")!, Date.now()).ban, undefined);
  assert.match(
    warnings[0],
    /^cannot reach the database at .+, and the local copy of the lists .*lists-copy\.bin is damaged \(its checksum does not match its contents\), so it is not used: this node greets and screens, but enforces no ban, pass or allow entry/,
  );
  await away.close(100);
  const back = await Store.open({ url, node: "a", localCopy: copyPath }, (error) => warnings.push(error.message));
  onCleanup(() => back.close(100));
  assert.ok(back.lookup(parseIP("198.51.100.7")!, Date.now()).ban, "the database's lists, the damaged copy not read");
  assert.equal(new LocalCopy(copyPath).read()?.count, 1, "and the copy written again from them");
});

test("conflicting writes: for one entry the change made last wins on every node, whatever order they reach the database in", async () => {
  const url = `file:${join(tempDir(), "c.db")}`;
  const a = await open(url, "a");
  const b = await open(url, "b");
  const x = parsePrefix("198.51.100.9")!;
  const t = Date.now();
  a.set("ban", { prefix: x, ttlMs: 60_000, reason: "first" }, t);
  await a.flush();
  b.remove("ban", x, t + 200, "lifted by an operator");
  await b.flush();
  // A ban made before the removal but written after it (a node that was cut off and catches up).
  a.set("ban", { prefix: x, ttlMs: 3_600_000, reason: "extended while cut off" }, t + 100);
  await a.flush();
  assert.deepEqual(await a.list("ban", t + 300), [], "the removal was the last change");
  const c = await open(url, "c");
  assert.equal(c.lookup(parseIP("198.51.100.9")!, t + 300).ban, undefined, "a node loading the lists agrees");
  b.follow({ fastMs: 30, idleMs: 30 }, { runtime: "test", listen: "-", startedAt: t });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(b.lookup(parseIP("198.51.100.9")!, t + 300).ban, undefined, "a node following the changes agrees");
  b.set("ban", { prefix: x, ttlMs: 60_000, reason: "banned again" }, t + 400);
  await b.flush();
  assert.deepEqual((await a.list("ban", t + 500)).map((r) => r.reason), ["banned again"]);
});
