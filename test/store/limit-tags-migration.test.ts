import assert from "node:assert/strict";
import { createClient } from "@libsql/client";
import { join } from "node:path";
import { migrate } from "../../src/store/migrate.ts";
import { test } from "../harness.ts";
import { tempDir } from "../helpers/server.ts";

test("migration 0004: rows written under the shared tag LIMIT read as COMMAND-LIMIT and CONNECTION-LIMIT, other rows untouched", async () => {
  const client = createClient({ url: `file:${join(tempDir(), "m.db")}` });
  try {
    await migrate(client);
    // A database as a node before the split left it: 0004 not yet applied, LIMIT rows of both checks.
    await client.execute("DELETE FROM schema_migrations WHERE name = '0004_limit_tags.sql'");
    const event =
      "INSERT INTO events (at, node, client_ip, client_port, event, check_id, action, evidence) VALUES (1, 'n1', '192.0.2.1', 25, ?, ?, 'enforce', '{}')";
    for (const [tag, check] of [["LIMIT", "command-limit"], ["LIMIT", "connection-limit"], ["PREGREET", "pregreet"]]) {
      await client.execute({ sql: event, args: [tag, check] });
    }
    await client.execute(
      "INSERT INTO list_changes (kind, prefix, op, created_at, node, check_id, reason) VALUES ('ban', '192.0.2.1/32', 'set', 1, 'n1', 'connection-limit', 'LIMIT')",
    );
    assert.deepEqual(await migrate(client), ["0004_limit_tags.sql"]);
    const events = await client.execute("SELECT event, check_id FROM events ORDER BY id");
    assert.deepEqual(events.rows.map((r) => [r.event, r.check_id]), [["COMMAND-LIMIT", "command-limit"], [
      "CONNECTION-LIMIT",
      "connection-limit",
    ], ["PREGREET", "pregreet"]]);
    const bans = await client.execute("SELECT reason FROM list_changes");
    assert.deepEqual(bans.rows.map((r) => r.reason), ["CONNECTION-LIMIT"]);
  } finally {
    client.close();
  }
});
