import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseIP, parsePrefix } from "../../src/ip/address.ts";
import { createLogger } from "../../src/log/logger.ts";
import { Store } from "../../src/store/store.ts";
import { test } from "../harness.ts";
import { tempDir } from "../helpers/server.ts";
import { query } from "../helpers/store-rows.ts";

const FAR_FUTURE = Date.UTC(9999, 0, 1);

function listChange(id: string, row: Record<string, unknown>) {
  return JSON.stringify({
    id,
    table: "list_changes",
    row: {
      kind: "ban",
      prefix: "192.0.2.9/32",
      op: "set",
      created_at: Date.now(),
      expires_at: null,
      node: "a",
      check_id: "pregreet",
      reason: "PREGREET",
      evidence: null,
      ...row,
    },
  });
}

test("journal replay: good lines land; an injected allow, an SQL column name, garbage and wrong types are logged and skipped, never executed", async () => {
  const dir = tempDir();
  const url = `file:${join(dir, "db.db")}`;
  const journal = join(dir, "queue.jsonl");
  const { evidence: _, ...withoutEvidence } = JSON.parse(listChange("x", {})).row;
  const sqlKey = `evidence", "op_id") values ('allow', '0.0.0.0/0', 'set', ${FAR_FUTURE}, null, 'evil', null, null, null, 'evil-op') --`;
  const lines = [
    listChange("good-1", {}),
    listChange("injected-allow", { kind: "allow", prefix: "0.0.0.0/0", created_at: FAR_FUTURE, reason: "let me in" }),
    JSON.stringify({ id: "sql-column", table: "list_changes", row: { ...withoutEvidence, [sqlKey]: null } }),
    JSON.stringify({ id: "extra", table: "list_changes", row: { ...JSON.parse(listChange("x", {})).row, 'x"\nlevel=info msg=forged': 1 } }),
    '{"id":"cut-short","table":"events","row":{"at":17',
    "garbage \u0000\u001b[31m not json",
    JSON.stringify({ id: "unknown-table", table: "sqlite_master", row: {} }),
    JSON.stringify({ id: "missing", table: "list_changes", row: { kind: "ban", prefix: "192.0.2.10/32" } }),
    listChange("wrong-type", { created_at: "soon" }),
    listChange("bad-kind", { kind: "root" }),
    listChange("bad-prefix", { prefix: "192.0.2.300/32" }),
    listChange("bad-expiry", { expires_at: Date.now() + 100_000_000 * 86_400_000 }),
    JSON.stringify({
      id: "good-event",
      table: "events",
      row: {
        at: Date.now(),
        node: "a",
        client_ip: "192.0.2.9",
        client_port: 4000,
        event: "PREGREET",
        check_id: "pregreet",
        action: "ban",
        evidence: "{}",
      },
    }),
    listChange("good-2", { prefix: "198.51.100.0/24" }),
  ];
  writeFileSync(journal, lines.join("\n") + "\n");
  const errors: string[] = [];
  const store = await Store.open({ url, node: "a", queueFile: journal }, (e) => errors.push(e.message));
  assert.equal(await store.flush(5_000), true, "the bad lines do not block the good ones");
  await store.close();

  const rows = await query(url, "SELECT op_id, kind, prefix FROM list_changes ORDER BY seq");
  assert.deepEqual(rows.map((r) => r.op_id), ["good-1", "good-2"]);
  assert.deepEqual(await query(url, "SELECT * FROM list_changes WHERE kind = 'allow' OR prefix = '0.0.0.0/0'"), []);
  assert.deepEqual((await query(url, "SELECT op_id FROM events")).map((r) => r.op_id), ["good-event"]);
  const reopened = await Store.open({ url, node: "a" }, () => {});
  assert.equal(reopened.lookup(parseIP("203.0.113.1")!, Date.now()).allow, undefined);
  assert.equal(reopened.lookup(parseIP("198.51.100.7")!, Date.now()).ban?.prefix, "198.51.100.0/24");
  await reopened.close();

  const skipped = errors.filter((e) => / skipped, not applied: /.test(e));
  assert.equal(skipped.length, 11, errors.join("\n"));
  for (
    const [line, why] of [
      [2, /list_changes\.created_at lies in the future/],
      [3, /unknown column "evidence\\", \\"op_id\\"\) values/],
      [4, /unknown column "x\\"\\nlevel=info msg=forged" for list_changes/],
      [5, /not JSON/],
      [6, /not JSON/],
      [7, /unknown table "sqlite_master"/],
      [8, /list_changes\.op is missing/],
      [9, /list_changes\.created_at is not a whole number/],
      [10, /list_changes\.kind is not one of ban, pass, allow/],
      [11, /list_changes\.prefix is not a CIDR prefix/],
      [12, /list_changes\.expires_at is not a valid date/],
    ] as const
  ) {
    assert.ok(
      skipped.some((e) => e.includes(`queue.jsonl line ${line} skipped`) && why.test(e)),
      `line ${line}: ${why}\n${skipped.join("\n")}`,
    );
  }
  const logged: string[] = [];
  const logger = createLogger("text", "a", (l) => logged.push(l));
  for (const e of skipped) logger.note("warn", e);
  for (const l of logged) assert.match(l, /^time=\S+ node=a level=warn msg="[\x20-\x7e]*"$/, "one printable line per skipped journal line");
  assert.ok(!logged.some((l) => l.includes("\nlevel=info")), "no forged log line");
});

test("a verdict's writes made together are in the journal when the call returns, and reach the database with every value as it was", async () => {
  const dir = tempDir();
  const url = `file:${join(dir, "t.db")}`;
  const journal = join(dir, "queue.jsonl");
  const store = await Store.open({ url, node: "a", queueFile: journal }, () => {});
  const sent = 'EHLO "x"\\y\r\n\u00e9\u2603\u0000';
  const now = Date.now();
  store.together(() => {
    store.set("ban", { prefix: parsePrefix("192.0.2.7/32")!, ttlMs: null, check: "pregreet", reason: "PREGREET", evidence: { sent } }, now);
    store.recordEvent({ at: now, clientIp: "192.0.2.7", clientPort: 4000, event: "PREGREET", action: "ban", evidence: { sent } });
  });
  assert.deepEqual(readFileSync(journal, "utf8").trim().split("\n").map((line) => JSON.parse(line).table), ["list_changes", "events"]);
  assert.equal(await store.flush(5_000), true);
  await store.close();
  const [ban] = await query(url, "SELECT prefix, expires_at, check_id, evidence, typeof(created_at) AS created FROM list_changes");
  assert.deepEqual({ ...ban, evidence: JSON.parse(String(ban.evidence)) }, {
    prefix: "192.0.2.7/32",
    expires_at: null,
    check_id: "pregreet",
    evidence: { sent },
    created: "integer",
  });
  const [event] = await query(url, "SELECT client_port, typeof(client_port) AS port, check_id, evidence FROM events");
  assert.deepEqual({ ...event, evidence: JSON.parse(String(event.evidence)) }, {
    client_port: 4000,
    port: "integer",
    check_id: null,
    evidence: { sent },
  });
});
