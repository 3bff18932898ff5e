/**
 * What `observedChecks` (the false-positive estimate of `mxscreen stats`, /api/stats and the
 * dashboard) costs at a million events, against a `file:` database and sqld on loopback, next to
 * one query that scans the table (the distinct clients of the observed hits), for scale.
 *
 *   node_modules/.bin/deno run -A bench/observe.ts [--events 1000000] [--runs 5]
 *   node_modules/.bin/bun bench/observe.ts
 *
 * The events (built with SQL, spread over the last 7 days, in groups of ten): 60 % `PASS NEW`
 * with a delivered message from 100,000 addresses; 10 % `helo-syntax` hits in `ignore` whose
 * session got a 4xx, from 200,000 addresses, half of them among those; 10 % `ptr` hits in
 * `ignore` from the other half; 10 % pregreet bans and 10 % DNSBL refusals from 50,000 of the
 * first 100,000. So helo-syntax has bots by ban, legitimate senders that delivered after the
 * 4xx and bots that did not; ptr has the bots that did not, and clients with no evidence (every
 * probe misses: the dearest case).
 */
import process from "node:process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { Kysely, sql } from "kysely";
import { runtimeName } from "../src/net/runtime/which-runtime.ts";
import { LibsqlDialect } from "../src/store/libsql-dialect.ts";
import { migrate } from "../src/store/migrate.ts";
import { observedChecks } from "../src/store/observed-checks.ts";
import type { Database } from "../src/store/types.ts";
import { withSqld } from "./sqld.ts";

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const EVENTS = Number(option("events", "1000000"));
const RUNS = Number(option("runs", "5"));
const DAY = 86_400_000;

async function fill(url: string): Promise<Kysely<Database>> {
  const client = createClient({ url });
  await migrate(client);
  const now = Date.now();
  for (let from = 0; from < EVENTS; from += 100_000) {
    await client.execute(`
      WITH RECURSIVE n(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ${Math.min(EVENTS, from + 100_000)})
      INSERT INTO events (at, node, client_ip, client_port, event, check_id, action, evidence)
      SELECT ${now} - (i * ${
      Math.floor((7 * DAY) / EVENTS)
    }), 'bench', '10.' || (p / 65536) || '.' || (p / 256 % 256) || '.' || (p % 256), 25,
        CASE i % 10 WHEN 6 THEN 'HELO' WHEN 7 THEN 'PTR' WHEN 8 THEN 'PREGREET' WHEN 9 THEN 'DNSBL' ELSE 'PASS NEW' END,
        CASE i % 10 WHEN 6 THEN 'helo-syntax' WHEN 7 THEN 'ptr' WHEN 8 THEN 'pregreet' WHEN 9 THEN 'dnsbl' ELSE 'none' END,
        CASE i % 10 WHEN 6 THEN 'ignore' WHEN 7 THEN 'ignore' WHEN 8 THEN 'ban' WHEN 9 THEN 'enforce' ELSE 'pass' END,
        CASE i % 10 WHEN 6 THEN '{"helo":"x","tempfails":1,"messages":0}' WHEN 9 THEN '{"dnsbl_score":3}' ELSE '{"helo":"mail.example","messages":1}' END
      FROM (SELECT i, CASE i % 10 WHEN 6 THEN g % 200000 WHEN 7 THEN 100000 + g % 100000 WHEN 8 THEN g % 50000 WHEN 9 THEN g % 50000 ELSE g % 100000 END AS p
        FROM (SELECT i, (i / 10) * 7919 AS g FROM n))`);
  }
  return new Kysely<Database>({ dialect: new LibsqlDialect(client) });
}

async function measure(label: string, db: Kysely<Database>): Promise<void> {
  const settings = { windowMs: 7 * DAY, retryWindowMs: 4 * 3_600_000, dnswlThreshold: -1 };
  const times: number[] = [];
  let result;
  for (let run = 0; run < RUNS; run++) {
    const start = performance.now();
    result = await observedChecks(db, Date.now(), settings);
    times.push(performance.now() - start);
  }
  const scanStart = performance.now();
  await sql`SELECT count(DISTINCT client_ip) FROM events NOT INDEXED WHERE action IN ('ignore', 'observe')`.execute(db);
  const scan = performance.now() - scanStart;
  times.sort((a, b) => a - b);
  console.log(
    `${runtimeName()} ${label}, ${EVENTS.toLocaleString("en")} events: observedChecks median ${
      times[Math.floor(RUNS / 2)].toFixed(1)
    } ms (min ${times[0].toFixed(1)}, max ${times[RUNS - 1].toFixed(1)}); the observed hits' distinct clients by a scan of the table ${
      scan.toFixed(1)
    } ms`,
  );
  for (const c of result!.checks) {
    console.log(
      `  ${c.check}: ${c.clients} clients, ${c.hits} hits${
        c.sampled ? " (sampled)" : ""
      }, legitimate ${c.legitimate}, bot ${c.bot}, unknown ${c.unknown}, rate ${c.falsePositiveRate}`,
    );
  }
}

const dir = mkdtempSync(join(tmpdir(), "mxscreen-bench-observe-"));
try {
  const file = await fill(`file:${join(dir, "events.db")}`);
  await measure("file:", file);
  await file.destroy();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
await withSqld(async (url) => {
  const db = await fill(url);
  await measure("sqld on loopback", db);
  await db.destroy();
});
