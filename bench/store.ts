/**
 * The store's two promises, measured: a ban/allow/pass lookup never waits (in-memory index,
 * 1,000,000 entries: IPv4 hosts, IPv6 /64s and CIDR prefixes), and a ban made on one node is
 * enforced on another through sqld within a second (p50/p99 of write-to-visible).
 *
 *   node_modules/.bin/deno run -A bench/store.ts     node_modules/.bin/bun bench/store.ts
 * And an import: a list file of N lines (`mxscreen ban import`'s code) into sqld, timed.
 *
 *   options: --entries N (1000000)  --lookups N (2000000)  --bans N (200)  --follow-ms N (250)  --no-nudge  --import-lines N (1000000)
 */
import process from "node:process";
import type { IP } from "../src/ip/address.ts";
import { runtimeName } from "../src/net/runtime/which-runtime.ts";
import { type IndexedChange, ListIndex } from "../src/store/prefix-index.ts";
import { Store } from "../src/store/store.ts";
import { type Propagation, propagation, type Stage } from "./propagation.ts";
import { withSqld } from "./sqld.ts";
import { readListFile } from "../src/store/list-file.ts";
import { importList } from "../src/store/list-import.ts";

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const ENTRIES = option("entries", 1_000_000);
const LOOKUPS = option("lookups", 2_000_000);
const BANS = option("bans", 200);
const FOLLOW_MS = option("follow-ms", 250);
/** --no-nudge measures polling alone, as before nodes nudged each other. */
const NUDGES = !args.includes("--no-nudge");
const IMPORT_LINES = option("import-lines", 1_000_000);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** A deterministic pseudo-random sequence, so every run and runtime looks up the same addresses. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    return s;
  };
}

function v4(n: number): IP {
  return { family: 4, value: n >>> 0 };
}

function v6(a: number, b: number, c: number): IP {
  return { family: 6, groups: [0x2001, 0x0db8, a & 0xffff, b & 0xffff, c & 0xffff, 0, 0, 1] };
}

function lookupBench(): { family: string; nsPerLookup: number; hitRate: number }[] {
  const next = random(42);
  const index = new ListIndex();
  const entry = (prefix: IndexedChange["prefix"]): IndexedChange => ({
    kind: "ban",
    prefix,
    op: "set",
    createdAt: 1,
    expiresAt: null,
    node: "bench",
    check: "bench",
    reason: "bench",
  });
  const v4Hosts = Math.floor(ENTRIES * 0.6);
  const v6Nets = Math.floor(ENTRIES * 0.3);
  const cidrs = ENTRIES - v4Hosts - v6Nets;
  const v4Keys: number[] = [];
  for (let i = 0; i < v4Hosts; i++) {
    const n = next();
    v4Keys.push(n);
    index.apply(entry({ ip: v4(n), length: 32 }));
  }
  const v6Keys: [number, number][] = [];
  for (let i = 0; i < v6Nets; i++) {
    const k: [number, number] = [next(), next()];
    v6Keys.push(k);
    index.apply(entry({ ip: v6(k[0], k[1], 0), length: 64 }));
  }
  for (let i = 0; i < cidrs; i++) {
    if (i % 2 === 0) index.apply(entry({ ip: v4(next() & 0xffffff00), length: 24 }));
    else index.apply(entry({ ip: { family: 6, groups: [0x2001, next() & 0xffff, next() & 0xffff, 0, 0, 0, 0, 0] }, length: 48 }));
  }
  const queries: Record<string, IP[]> = { ipv4: [], ipv6: [] };
  for (let i = 0; i < 100_000; i++) {
    queries.ipv4.push(v4(i % 2 === 0 ? v4Keys[next() % v4Keys.length] : next()));
    const k = v6Keys[next() % v6Keys.length];
    queries.ipv6.push(i % 2 === 0 ? v6(k[0], k[1], next()) : v6(next(), next(), next()));
  }
  return Object.entries(queries).map(([family, ips]) => {
    const runs: number[] = [];
    let hits = 0;
    for (let rep = 0; rep < 7; rep++) {
      hits = 0;
      const started = performance.now();
      for (let i = 0; i < LOOKUPS; i++) if (index.lookup("ban", ips[i % ips.length], 0) !== undefined) hits++;
      runs.push(((performance.now() - started) * 1e6) / LOOKUPS);
    }
    return { family, nsPerLookup: median(runs.slice(2)), hitRate: hits / LOOKUPS };
  });
}

function propagationBench(): Promise<Propagation> {
  return withSqld((url, dir) =>
    propagation({
      url,
      dir,
      names: ["a", "b"],
      block: 0,
      bans: BANS,
      followMs: FOLLOW_MS,
      nudges: NUDGES,
      gapMs: () => next() % (2 * FOLLOW_MS),
    })
  );
}

/** A list file of IMPORT_LINES lines (a tenth of them Postfix reject lines) imported into sqld: seconds, and CPU of this process. */
function importBench(): Promise<{ seconds: number; cpuSeconds: number; added: number }> {
  return withSqld(async (url) => {
    const lines: string[] = [];
    for (let i = 0; i < IMPORT_LINES; i++) {
      lines.push(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}${i % 10 === 0 ? " reject" : " feed"}`);
    }
    const store = await Store.open({ url, node: "importer", index: false }, (e) => console.error(e.message));
    const started = performance.now();
    const cpu = process.cpuUsage();
    const report = await importList(store, readListFile(lines.join("\n")), {
      kind: "ban",
      confirm: "--force",
      defaultTtlMs: { ban: 86_400_000, allow: null },
    });
    const used = process.cpuUsage(cpu);
    const seconds = (performance.now() - started) / 1000;
    await store.close();
    return { seconds, cpuSeconds: (used.user + used.system) / 1e6, added: report.added };
  });
}

const next = random(7);
console.log(`# store bench, ${runtimeName()}, ${new Date().toISOString()}`);
console.log(
  `\nlookup: ${ENTRIES.toLocaleString("en")} entries (60% IPv4 hosts, 30% IPv6 /64s, 10% CIDR /24 and /48), ${
    LOOKUPS.toLocaleString("en")
  } lookups per run, median of 5 runs after 2 warm-ups`,
);
console.log("| family | ns per lookup | hit rate |\n|---|---:|---:|");
for (const row of lookupBench()) console.log(`| ${row.family} | ${row.nsPerLookup.toFixed(0)} | ${(row.hitRate * 100).toFixed(0)}% |`);
const p = await propagationBench();
console.log(
  `\npropagation: ${p.n} bans on node a, each timed until node b's index has it (sqld on loopback, follow every ${FOLLOW_MS} ms, bans at random phases, ${
    NUDGES ? "node a nudges node b" : "no nudges: polling alone"
  })`,
);
console.log(`| p50 | p99 | max |\n|---:|---:|---:|\n| ${p.p50.toFixed(0)} ms | ${p.p99.toFixed(0)} ms | ${p.max.toFixed(0)} ms |`);
const shown = (s: Stage | undefined) => s === undefined ? "–" : `${s.p50.toFixed(1)} / ${s.p99.toFixed(1)} ms`;
console.log(
  `\nwhere the time went, p50 / p99 (written: node a's queue and write; nudged: the nudge until node b's store is woken; read: node b's read until its index has the ban)`,
);
console.log(
  `| written | nudged | read |\n|---:|---:|---:|\n| ${shown(p.stages.written)} | ${shown(p.stages.nudged)} | ${shown(p.stages.read)} |`,
);
const imported = await importBench();
console.log(`\nimport: ${IMPORT_LINES.toLocaleString("en")} lines (mxscreen ban import's code) into sqld on loopback`);
console.log(
  `| lines added | seconds | CPU seconds (importer) |\n|---:|---:|---:|\n| ${imported.added.toLocaleString("en")} | ${
    imported.seconds.toFixed(1)
  } | ${imported.cpuSeconds.toFixed(1)} |`,
);
process.exit(0);
