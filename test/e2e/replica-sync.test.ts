import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "../harness.ts";
import { importBans } from "../helpers/bulk-bans.ts";
import { becomes, probeTeasers } from "../helpers/screen-probe.ts";
import { startServer, tempDir } from "../helpers/server.ts";
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
    const probe = probeTeasers(replica, "127.0.15.2");
    await importBans(sqld.url, 200_000, "127.0.15.1");
    await becomes(replica, "127.0.15.1", "554 ", 10_000);
    // And a moment after, for the copy of the lists the node writes once it has them.
    await new Promise((r) => setTimeout(r, 1_000));
    const waits = await probe.stop();
    const slowest = Math.max(...waits);
    assert.ok(waits.length >= 20, `${waits.length} connections probed`);
    assert.ok(
      slowest < 500,
      `the slowest of ${waits.length} teasers came after ${
        Math.round(slowest)
      } ms (a sync on the event loop holds it for about a second here)`,
    );
  },
  { timeoutMs: 60_000, alone: true },
);
