import assert from "node:assert/strict";
import { createClient } from "@libsql/client";
import { join } from "node:path";
import { test } from "../harness.ts";
import { becomes } from "../helpers/screen-probe.ts";
import { startServer, tempDir } from "../helpers/server.ts";
import { RawClient } from "../helpers/smtp-client.ts";
import { startSqld } from "../helpers/sqld.ts";

test(
  "an embedded-replica node keeps greeting at once while it syncs a change of 200,000 bans another node imported (the sync runs on libsql's own thread)",
  async () => {
    const sqld = await startSqld();
    const dir = tempDir();
    const replica = await startServer({
      MXSCREEN_DB_URL: `file:${join(dir, "replica.db")}`,
      MXSCREEN_DB_SYNC_URL: sqld.url,
      MXSCREEN_NODE: "replica",
      MXSCREEN_GREET_WAIT: "3s",
      MXSCREEN_FOLLOW_IDLE_INTERVAL: "250ms",
    }, { dir });
    // Each connection's teaser timed, from before the change is written until the node enforces it.
    const waits: number[] = [];
    let probe = true;
    const probing = (async () => {
      while (probe) {
        const started = performance.now();
        const client = await RawClient.open(replica.port, "127.0.15.2");
        await client.until(/^220-/m);
        waits.push(performance.now() - started);
        client.close();
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const primary = createClient({ url: sqld.url });
    const statements = [];
    for (let from = 0; from < 200_000; from += 20_000) {
      statements.push(`WITH RECURSIVE n(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM n WHERE i < ${from + 19_999})
      INSERT INTO list_changes (kind, prefix, op, created_at, expires_at, node, check_id, reason, evidence)
      SELECT 'ban', printf('10.%d.%d.%d/32', (i >> 16) & 255, (i >> 8) & 255, i & 255), 'set', ${Date.now()}, NULL, 'importer', NULL, 'feed', NULL FROM n`);
    }
    statements.push(`INSERT INTO list_changes (kind, prefix, op, created_at, expires_at, node, check_id, reason, evidence)
    VALUES ('ban', '127.0.15.1/32', 'set', ${Date.now()}, NULL, 'importer', NULL, 'last of the feed', NULL)`);
    await primary.batch(statements, "write");
    primary.close();
    await becomes(replica, "127.0.15.1", "554 ", 10_000);
    // And a moment after, for the copy of the lists the node writes once it has them.
    await new Promise((r) => setTimeout(r, 1_000));
    probe = false;
    await probing;
    const slowest = Math.max(...waits);
    assert.ok(waits.length >= 20, `${waits.length} connections probed`);
    assert.ok(
      slowest < 250,
      `the slowest of ${waits.length} teasers came after ${
        Math.round(slowest)
      } ms (a sync on the event loop holds it for about a second here)`,
    );
  },
  { timeoutMs: 60_000, alone: true },
);
