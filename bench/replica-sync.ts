/**
 * Does an embedded replica's sync hold the event loop? Another node writes N list entries in
 * one transaction (an import) to sqld; a 1 ms timer measures how late the event loop runs
 * until a replica holds them. Two replicas of the same primary: one that calls sync() (as
 * the follower did), one that leaves it to libsql's background sync every second (as the store
 * does now). Reported: the longest gap between timer ticks, and how long until the rows were
 * there.
 *
 *   npm run bench:replica-sync                  (both runtimes)
 *   node_modules/.bin/deno run -A bench/replica-sync.ts --entries 10000,100000,500000
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

/** The longest gap between ticks of a 1 ms timer while `run` runs, and how long it took. */
async function loopGap(run: () => Promise<void>): Promise<{ gapMs: number; tookMs: number }> {
  let longest = 0;
  let last = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  const started = performance.now();
  await run();
  const tookMs = performance.now() - started;
  await new Promise((r) => setTimeout(r, 20));
  clearInterval(ticker);
  return { gapMs: longest, tookMs };
}

console.log(`# embedded replica sync, ${runtimeName()}, ${new Date().toISOString()}`);
console.log(
  "| runtime | rows in one change | sync() on the event loop: longest stall / until there | background sync: longest stall / until there |\n|---|---:|---:|---:|",
);
await withSqld(async (url, dir) => {
  const primary = createClient({ url });
  await migrate(primary);
  const called = createClient({ url: `file:${join(dir, "called.db")}`, syncUrl: url });
  const background = createClient({ url: `file:${join(dir, "background.db")}`, syncUrl: url, syncInterval: 1 });
  await called.sync();
  await background.sync();
  const rows = async (client: typeof called) => Number((await client.execute("SELECT count(*) FROM lists")).rows[0][0]);
  let written = 0;
  for (const entries of SIZES) {
    const statements = [];
    for (let from = written; from < written + entries; from += 5_000) {
      const to = Math.min(written + entries, from + 5_000) - 1;
      statements.push(`WITH RECURSIVE n(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM n WHERE i < ${to})
        INSERT INTO lists (kind, prefix, op, created_at, seq, expires_at, node, check_id, reason, evidence)
        SELECT 'ban', printf('10.%d.%d.%d/32', (i >> 16) & 255, (i >> 8) & 255, i & 255), 'set', 1, 0, NULL, 'bench', 'import', 'bench import', NULL FROM n`);
    }
    await primary.batch(statements, "write");
    written += entries;
    // The background one first: while sync() holds the event loop, the other's thread goes on.
    const behind = await loopGap(async () => {
      for (const deadline = Date.now() + 120_000; (await rows(background)) < written;) {
        if (Date.now() > deadline) throw new Error(`the background sync did not bring ${entries} rows within 2 minutes`);
        await new Promise((r) => setTimeout(r, 10));
      }
    });
    const explicit = await loopGap(() => called.sync().then(() => {}));
    if ((await rows(called)) !== written) throw new Error(`the replica holds ${await rows(called)} rows of ${written}`);
    console.log(
      `| ${runtimeName()} | ${entries.toLocaleString("en")} | ${explicit.gapMs.toFixed(0)} ms / ${explicit.tookMs.toFixed(0)} ms | ${
        behind.gapMs.toFixed(0)
      } ms / ${behind.tookMs.toFixed(0)} ms |`,
    );
  }
  called.close();
  background.close();
  primary.close();
});
process.exit(0);
