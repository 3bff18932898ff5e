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

/** Bans made on node a, each timed until node b's index has it: p50, p99 and the slowest, in ms. */
export async function propagation(run: PropagationRun): Promise<{ p50: number; p99: number; max: number; n: number }> {
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
  if (run.nudges) a.onListWritten(() => void nudges.send());
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
  for (let i = 0; i < run.bans; i++) {
    const ip = parseIP(`10.${run.block}.${(i >> 8) & 255}.${i & 255}`)!;
    const started = performance.now();
    a.set("ban", { prefix: { ip, length: 32 }, ttlMs: 60_000, check: "bench" }, Date.now());
    while (!b.lookup(ip, Date.now()).ban) {
      if (performance.now() - started > 10_000) throw new Error(`ban ${i} not visible on node b after 10 s`);
      await new Promise((r) => setTimeout(r, 2));
    }
    latencies.push(performance.now() - started);
    await new Promise((r) => setTimeout(r, run.gapMs()));
  }
  await a.close();
  await b.close();
  await admin?.close();
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: Math.max(...latencies), n: latencies.length };
}
