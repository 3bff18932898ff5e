/**
 * A fleet with its database near and far: sqld on loopback, and behind a delaying TCP proxy
 * (test/helpers/tcp-delay-proxy.ts) 80 ms of round trip away (40 ms each way), as a region's
 * distance. For each: a node's start time with 200,000 list entries in force, the RCPT latency
 * of a real mxscreen process with greylisting on (new triplets, each deferred), and a ban's
 * propagation from one node to another (nudges on, as the defaults wire them; the nudge itself
 * goes over loopback, undelayed, and the node nudged then reads the ban through the delay).
 *
 *   npm run bench:fleet                        (both runtimes)
 *   node_modules/.bin/deno run -A bench/fleet.ts --entries 200000 --rtt 0,80
 *   node_modules/.bin/bun bench/fleet.ts
 */
import { createClient } from "@libsql/client";
import { join } from "node:path";
import process from "node:process";
import { runtimeName } from "../src/net/runtime/which-runtime.ts";
import { migrate } from "../src/store/migrate.ts";
import { Store } from "../src/store/store.ts";
import { runCleanups } from "../test/harness.ts";
import { startServer, tempDir } from "../test/helpers/server.ts";
import { RawClient } from "../test/helpers/smtp-client.ts";
import { startTcpDelayProxy } from "../test/helpers/tcp-delay-proxy.ts";
import { percentile, propagation } from "./propagation.ts";
import { withSqld } from "./sqld.ts";

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const ENTRIES = Number(option("entries", "200000"));
const RTTS = option("rtt", "0,80").split(",").map(Number);
const RCPTS = Number(option("rcpts", "100"));
const BANS = Number(option("bans", "100"));
const RUNTIME = runtimeName().split(" ")[0] as "deno" | "bun";

/** ENTRIES bans in force, written straight into `lists` (as a fleet's history leaves them). */
async function fill(url: string): Promise<void> {
  const client = createClient({ url });
  await migrate(client);
  for (let from = 0; from < ENTRIES; from += 20_000) {
    const to = Math.min(ENTRIES, from + 20_000) - 1;
    await client.execute(`WITH RECURSIVE n(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM n WHERE i < ${to})
      INSERT INTO lists (kind, prefix, op, created_at, seq, expires_at, node, check_id, reason, evidence)
      SELECT 'ban', printf('100.%d.%d.%d/32', 64 + ((i >> 16) & 63), (i >> 8) & 255, i & 255), 'set', 1, 0, NULL, 'bench', 'pregreet', 'PREGREET', NULL FROM n`);
  }
  client.close();
}

/** Opening a node's store: migrations checked, lists loaded, the local copy written. */
async function startTime(url: string): Promise<number> {
  const dir = tempDir("mxscreen-bench-fleet-");
  const started = performance.now();
  const store = await Store.open(
    { url, node: "starting", queueFile: join(dir, "queue.jsonl"), localCopy: join(dir, "lists-copy.bin") },
    (e) => console.error(e.message),
  );
  const ms = performance.now() - started;
  if (store.inForce("ban") < ENTRIES) throw new Error(`started with ${store.inForce("ban")} entries of ${ENTRIES}`);
  await store.close();
  return ms;
}

/** RCPT → reply of a real node with greylisting on, each with a new triplet (deferred: the answer a greylisted RCPT waits for). */
async function rcptLatency(url: string): Promise<{ p50: number; p99: number }> {
  const node = await startServer({
    MXSCREEN_DB_URL: url,
    MXSCREEN_GREET_WAIT: "300ms",
    MXSCREEN_ACCEPT_DOMAINS: "example.org",
    MXSCREEN_GREYLIST: "true",
    MXSCREEN_NODE: "rcpt",
  }, { runtime: RUNTIME });
  const times: number[] = [];
  const client = await RawClient.greeted(node.port, "127.0.14.1");
  await client.command("HELO client.example.net", /^250 /);
  for (let i = 0; i < RCPTS; i++) {
    await client.command(`MAIL FROM:<s${i}@example.net>`, /^250 /);
    const started = performance.now();
    await client.command(`RCPT TO:<r${i}@example.org>`, /^451 4\.7\.1 /);
    times.push(performance.now() - started);
    await client.command("RSET", /^250 /);
  }
  await client.command("QUIT", /^221 /);
  await node.stop();
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

console.log(
  `# fleet bench, ${runtimeName()}, ${new Date().toISOString()}: ${
    ENTRIES.toLocaleString("en")
  } entries in force, ${RCPTS} greylisted RCPTs, ${BANS} bans`,
);
console.log("| runtime | database | start | RCPT p50 / p99 (greylisting on) | ban propagation p50 / p99 |\n|---|---|---:|---:|---:|");
await withSqld(async (url, dir, port) => {
  await fill(url);
  for (const rtt of RTTS) {
    const link = rtt === 0 ? { url } : await startTcpDelayProxy(port, rtt / 2);
    const start = await startTime(link.url);
    const rcpt = await rcptLatency(link.url);
    let s = 11;
    const ban = await propagation({
      url: link.url,
      dir,
      names: [`a-${rtt}`, `b-${rtt}`],
      block: RTTS.indexOf(rtt),
      bans: BANS,
      followMs: 250,
      nudges: true,
      gapMs: () => (s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0) % 500,
    });
    const where = rtt === 0 ? "sqld on loopback" : `sqld ${rtt} ms of round trip away`;
    console.log(
      `| ${runtimeName()} | ${where} | ${(start / 1000).toFixed(2)} s | ${rcpt.p50.toFixed(1)} / ${rcpt.p99.toFixed(1)} ms | ${
        ban.p50.toFixed(0)
      } / ${ban.p99.toFixed(0)} ms |`,
    );
  }
  await runCleanups();
});
process.exit(0);
