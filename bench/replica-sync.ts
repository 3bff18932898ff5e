/**
 * Does an embedded replica's sync hold the event loop? A replica that is in step with sqld
 * syncs after another node wrote N list entries (one import), while a 1 ms timer measures how
 * late the event loop runs; reported: how long the call to sync() took before it returned its
 * promise (code that ran on the calling thread), the longest gap between timer ticks during the
 * sync, and the sync's whole time.
 *
 *   node_modules/.bin/deno run -A bench/replica-sync.ts --entries 10000,100000,500000
 *   node_modules/.bin/bun bench/replica-sync.ts
 */
import { createClient } from "@libsql/client";
import { join } from "node:path";
import process from "node:process";
import { migrate } from "../src/store/migrate.ts";
import { runtimeName } from "../src/net/runtime/which-runtime.ts";
import { withSqld } from "./sqld.ts";

const args = process.argv.slice(2);
const i = args.indexOf("--entries");
const SIZES = (i >= 0 ? args[i + 1] : "10000,100000,500000").split(",").map(Number);

await withSqld(async (url, dir) => {
  const primary = createClient({ url });
  await migrate(primary);
  const replica = createClient({ url: `file:${join(dir, "replica.db")}`, syncUrl: url });
  await replica.sync();
  let written = 0;
  for (const entries of SIZES) {
    // As an import writes them: rows of `lists` (what a sync then brings over), in batches.
    for (let from = written; from < written + entries; from += 5_000) {
      const count = Math.min(5_000, written + entries - from);
      await primary.execute(`WITH RECURSIVE n(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM n WHERE i < ${from + count - 1})
        INSERT INTO lists (kind, prefix, op, created_at, seq, expires_at, node, check_id, reason, evidence)
        SELECT 'ban', printf('10.%d.%d.%d/32', (i >> 16) & 255, (i >> 8) & 255, i & 255), 'set', 1, 0, NULL, 'bench', 'import', 'bench import', NULL FROM n`);
    }
    written += entries;
    let longest = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
    }, 1);
    await new Promise((r) => setTimeout(r, 50));
    longest = 0;
    last = performance.now();
    const started = performance.now();
    const syncing = replica.sync();
    const callMs = performance.now() - started;
    await syncing;
    const wholeMs = performance.now() - started;
    await new Promise((r) => setTimeout(r, 20));
    clearInterval(ticker);
    const rows = Number((await replica.execute("SELECT count(*) FROM lists")).rows[0][0]);
    if (rows !== written) throw new Error(`the replica holds ${rows} rows of ${written}`);
    console.log(`| ${runtimeName()} | ${entries.toLocaleString("en")} | ${callMs.toFixed(0)} ms | ${longest.toFixed(0)} ms | ${wholeMs.toFixed(0)} ms |`);
  }
  replica.close();
  primary.close();
});
