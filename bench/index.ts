/**
 * A node's list index at scale: start time (opening a `file:` database holding N entries in
 * force, loading them and writing the local copy), start time from the local copy alone (the
 * database refused), the memory it costs (RSS after the load minus RSS before it, per entry,
 * after a full collection) and lookup time, at 1,000,000 and 10,000,000 entries, each measured
 * in a fresh process.
 *
 *   npm run bench:index                        (both runtimes, 1 M and 10 M, 3 runs each)
 *   node_modules/.bin/deno run -A bench/index.ts --entries 1000000 --runs 3
 *   node_modules/.bin/bun bench/index.ts --entries 1000000,10000000
 *
 * The entries: 60 % IPv4 hosts, 30 % IPv6 /64s, 10 % IPv4 /24s, all bans in force; lookups are
 * half hits, half misses, for IPv4 and IPv6 (wall time per lookup, and in parentheses this
 * process's CPU time per lookup). The databases are built once per size (with SQL)
 * under the system's temp directory and reused by later runs.
 */
import { spawnSync } from "node:child_process";
import { existsSync, renameSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createClient } from "@libsql/client";
import type { IP } from "../src/ip/address.ts";
import { bigMemory } from "../src/net/runtime/memory.ts";
import { runtimeName } from "../src/net/runtime/which-runtime.ts";
import { migrate } from "../src/store/migrate.ts";
import { Store } from "../src/store/store.ts";

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const SIZES = option("entries", "1000000,10000000").split(",").map(Number);
const RUNS = Number(option("runs", "3"));
const LOOKUPS = 2_000_000;
const MULTIPLIER = 2654435761;

/** The i-th entry's key, the same formula as the SQL that built the database. */
function v4Host(i: number): number {
  return Number((BigInt(i) * BigInt(MULTIPLIER)) % 4294967296n);
}

async function databaseFor(entries: number): Promise<string> {
  const file = join(tmpdir(), `mxscreen-bench-index-${entries}.db`);
  if (existsSync(file)) return file;
  const building = `${file}.building`;
  rmSync(building, { force: true });
  const client = createClient({ url: `file:${building}` });
  {
    await migrate(client);
    const hosts = Math.floor(entries * 0.6);
    const nets = Math.floor(entries * 0.3);
    const cidrs = entries - hosts - nets;
    const fill = (count: number, prefix: string) =>
      client.execute(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${count - 1})
        INSERT INTO lists (kind, prefix, op, created_at, seq, expires_at, node, check_id, reason, evidence)
        SELECT 'ban', ${prefix}, 'set', 1, 0, NULL, 'bench', 'pregreet', 'PREGREET', NULL FROM n`);
    const h = `((i * ${MULTIPLIER}) % 4294967296)`;
    await fill(hosts, `printf('%d.%d.%d.%d/32', (${h} >> 24) & 255, (${h} >> 16) & 255, (${h} >> 8) & 255, ${h} & 255)`);
    await fill(nets, `printf('2001:db8:%x:%x::/64', i >> 16, i & 65535)`);
    const c = `((i * ${MULTIPLIER}) % 16777216)`;
    await fill(cidrs, `printf('%d.%d.%d.0/24', (${c} >> 16) & 255, (${c} >> 8) & 255, ${c} & 255)`);
    client.close();
    renameSync(building, file);
    return file;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** One measurement in this process: open, load, look up. */
async function measure(file: string, entries: number): Promise<Record<string, number | string>> {
  const memory = await bigMemory();
  memory.collect();
  const rssBefore = process.memoryUsage.rss();
  const started = performance.now();
  const copyPath = join(tmpdir(), `mxscreen-bench-index-copy-${process.pid}.bin`);
  const store = await Store.open(
    { url: `file:${file}`, node: "bench", memory, localCopy: copyPath },
    (error) => console.error(error.message),
  );
  const startMs = performance.now() - started;
  memory.collect();
  const rssAfter = process.memoryUsage.rss();
  if (store.inForce("ban") !== entries) throw new Error(`loaded ${store.inForce("ban")} entries of ${entries}`);
  let s = 7;
  const next = () => (s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0);
  const hosts = Math.floor(entries * 0.6);
  const nets = Math.floor(entries * 0.3);
  const v4: IP[] = [];
  const v6: IP[] = [];
  for (let i = 0; i < 100_000; i++) {
    v4.push({ family: 4, value: i % 2 === 0 ? v4Host(next() % hosts) : next() });
    const n = next() % nets;
    v6.push(
      i % 2 === 0
        ? { family: 6, groups: [0x2001, 0xdb8, n >>> 16, n & 0xffff, next() & 0xffff, 0, 0, 1] }
        : { family: 6, groups: [0x2001, 0xdb9, next() & 0xffff, 0, 0, 0, 0, 1] },
    );
  }
  // Wall time, and CPU time of this process: on a shared machine the wall clock also counts
  // the time other processes had the core.
  const time = (ips: IP[]) => {
    const wall: number[] = [];
    const cpu: number[] = [];
    let hits = 0;
    for (let rep = 0; rep < 5; rep++) {
      hits = 0;
      const t = performance.now();
      const c = process.cpuUsage();
      for (let i = 0; i < LOOKUPS; i++) if (store.lookup(ips[i % ips.length], 0).ban !== undefined) hits++;
      const used = process.cpuUsage(c);
      wall.push(((performance.now() - t) * 1e6) / LOOKUPS);
      cpu.push(((used.user + used.system) * 1e3) / LOOKUPS);
    }
    if (hits < LOOKUPS * 0.45) throw new Error(`only ${hits} of ${LOOKUPS} lookups hit`);
    return { wall: Math.round(median(wall.slice(1))), cpu: Math.round(median(cpu.slice(1))) };
  };
  const v4Times = time(v4);
  const v6Times = time(v6);
  const result = {
    runtime: runtimeName(),
    entries,
    startMs: Math.round(startMs),
    rssMB: Math.round(rssAfter / 1e6),
    bytesPerEntry: Math.round((rssAfter - rssBefore) / entries),
    v4LookupNs: v4Times.wall,
    v4LookupCpuNs: v4Times.cpu,
    v6LookupNs: v6Times.wall,
    v6LookupCpuNs: v6Times.cpu,
  };
  await store.close();
  // A start with the database refused: from the local copy the first open wrote.
  const copyStarted = performance.now();
  const fromCopy = await Store.open({ url: "http://127.0.0.1:1", node: "bench", memory, localCopy: copyPath }, () => {});
  const copyStartMs = performance.now() - copyStarted;
  if (fromCopy.inForce("ban") !== entries) throw new Error(`started from the copy with ${fromCopy.inForce("ban")} entries of ${entries}`);
  const copyMB = Math.round(statSync(copyPath).size / 1e6);
  await fromCopy.close(100);
  rmSync(copyPath, { force: true });
  return { ...result, copyStartMs: Math.round(copyStartMs), copyMB };
}

if (args.includes("--child")) {
  const entries = Number(option("entries", "0"));
  console.log(JSON.stringify(await measure(option("file", ""), entries)));
  process.exit(0);
}

// Built once, by the first runtime that needs it.
const files = new Map<number, string>();
for (const entries of SIZES) files.set(entries, await databaseFor(entries));
const here = process.execPath;
const runtimeArgs = runtimeName().startsWith("deno") ? ["run", "-A", "--v8-flags=--expose-gc"] : [];
for (const entries of SIZES) {
  const runs: Record<string, number | string>[] = [];
  for (let run = 0; run < RUNS; run++) {
    const child = spawnSync(here, [
      ...runtimeArgs,
      new URL(import.meta.url).pathname,
      "--child",
      "--entries",
      String(entries),
      "--file",
      files.get(entries)!,
    ], {
      encoding: "utf8",
      maxBuffer: 1 << 20,
      timeout: 900_000,
    });
    if (child.status !== 0) throw new Error(`the measuring process for ${entries} entries failed: ${child.stderr}`);
    const result = JSON.parse(child.stdout.trim().split("\n").pop()!);
    console.log(JSON.stringify({ run, ...result }));
    runs.push(result);
  }
  const m = (key: string) => median(runs.map((r) => Number(r[key])));
  console.log(
    `| ${runs[0].runtime} | ${entries.toLocaleString("en")} | ${m("startMs")} ms | ${m("copyStartMs")} ms (${m("copyMB")} MB) | ${
      m("rssMB")
    } MB | ${m("bytesPerEntry")} B | ${m("v4LookupNs")} (${m("v4LookupCpuNs")}) ns | ${m("v6LookupNs")} (${m("v6LookupCpuNs")}) ns |`,
  );
}
