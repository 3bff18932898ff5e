import { join } from "node:path";
import { parseIP } from "../src/ip/address.ts";
import { adminApp } from "../src/admin/app.ts";
import { Nudges } from "../src/cluster/nudges.ts";
import { Metrics } from "../src/metrics/metrics.ts";
import { serve } from "../src/net/runtime/serve.ts";
import { runtimeName } from "../src/net/runtime/which-runtime.ts";
import { Store } from "../src/store/store.ts";

export interface PropagationRun {
  /** The database URL the two nodes use: sqld itself, or a delaying proxy in front of it. */
  readonly url: string;
  /** Where their journals go. */
  readonly dir: string;
  readonly bans: number;
  readonly followMs: number;
  /** false: polling alone, as before nodes nudged each other. */
  readonly nudges: boolean;
  /** The two nodes' names: a fleet's nodes table remembers every node, and where to nudge it, across runs. */
  readonly names: readonly [string, string];
  /** The second octet of the banned addresses (10.N.x.y): bans of an earlier run on the same database are still in force. */
  readonly block: number;
  /** The gap after each ban, so that bans land at every phase of node b's polling. */
  readonly gapMs: () => number;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** p50 and p99 of one stage of a ban's way, in ms. */
export interface Stage {
  readonly p50: number;
  readonly p99: number;
}

export interface Propagation {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly n: number;
  /**
   * Where the time went, per ban: `written` from the ban made on node a until its write
   * reached the database (the queue, then the round trip), `nudged` from there until node b's
   * store was woken (the nudge's request and node b's HTTP server), `read` from there until
   * node b's index had it (node b's read of the change log). Without nudges only the first.
   */
  readonly stages: { readonly written: Stage; readonly nudged?: Stage; readonly read?: Stage };
}

const stage = (values: number[]): Stage => ({ p50: percentile(values, 50), p99: percentile(values, 99) });

/** Bans made on node a, each timed until node b's index has it: p50, p99 and the slowest, in ms, and the stages. */
export async function propagation(run: PropagationRun): Promise<Propagation> {
  const [nameA, nameB] = run.names;
  const a = await Store.open({ url: run.url, node: nameA, queueFile: join(run.dir, `${nameA}.jsonl`) }, (e) => console.error(e.message));
  const b = await Store.open({ url: run.url, node: nameB, queueFile: join(run.dir, `${nameB}.jsonl`) }, (e) => console.error(e.message));
  // Node b's admin API takes the nudges; node a sends them once a ban reached sqld (as src/main.ts wires them).
  const app = adminApp({
    store: b,
    metrics: new Metrics(),
    token: undefined,
    allow: [],
    banTtlMs: 60_000,
    passTtls: { greetMs: 86_400_000, protocolMs: 86_400_000 },
    listening: () => true,
    openConnections: () => 0,
  });
  const admin = run.nudges ? await serve((request, peer) => app.fetch(request, peer), "127.0.0.1", 0) : undefined;
  const nudges = new Nudges(nameA, undefined, (e) => console.error(e.message));
  let writtenAt = 0;
  let wokenAt = 0;
  a.onListWritten(() => writtenAt ||= performance.now());
  if (run.nudges) a.onListWritten(() => void nudges.send());
  const wake = b.wake.bind(b);
  b.wake = () => {
    wokenAt ||= performance.now();
    wake();
  };
  // With nudges, polling runs at the default idle pace: the nudge, not the poll, carries the ban.
  b.follow({ fastMs: run.followMs, idleMs: run.nudges ? 5_000 : run.followMs }, {
    runtime: runtimeName(),
    listen: "-",
    startedAt: Date.now(),
    adminUrl: admin && `http://127.0.0.1:${admin.port}`,
  });
  // Node b's own heartbeat, not an earlier run's node of the same database, is what node a must know.
  const heard = async () => (await a.db.selectFrom("nodes").select("admin_url").where("name", "=", nameB).executeTakeFirst())?.admin_url;
  for (const deadline = Date.now() + 15_000; run.nudges && !(await heard());) {
    if (Date.now() > deadline) throw new Error(`node ${nameA} never learned node ${nameB}'s admin URL from the nodes table`);
    await new Promise((r) => setTimeout(r, 50));
  }
  if (run.nudges) await nudges.readPeers(a.db);
  const latencies: number[] = [];
  const written: number[] = [];
  const nudged: number[] = [];
  const read: number[] = [];
  for (let i = 0; i < run.bans; i++) {
    const ip = parseIP(`10.${run.block}.${(i >> 8) & 255}.${i & 255}`)!;
    writtenAt = wokenAt = 0;
    const started = performance.now();
    a.set("ban", { prefix: { ip, length: 32 }, ttlMs: 60_000, check: "bench" }, Date.now());
    while (!b.lookup(ip, Date.now()).ban) {
      if (performance.now() - started > 10_000) throw new Error(`ban ${i} not visible on node b after 10 s`);
      await new Promise((r) => setTimeout(r, 2));
    }
    const seen = performance.now();
    latencies.push(seen - started);
    // A turn of node b's polling may find the ban before its write's answer reached node a, or before the nudge.
    const at = { written: writtenAt || seen, woken: Math.max(wokenAt || seen, writtenAt || seen) };
    written.push(at.written - started);
    if (run.nudges) {
      nudged.push(Math.max(0, at.woken - at.written));
      read.push(seen - at.woken);
    }
    await new Promise((r) => setTimeout(r, run.gapMs()));
  }
  await a.close();
  await b.close();
  await admin?.close();
  return {
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: Math.max(...latencies),
    n: latencies.length,
    stages: run.nudges ? { written: stage(written), nudged: stage(nudged), read: stage(read) } : { written: stage(written) },
  };
}
