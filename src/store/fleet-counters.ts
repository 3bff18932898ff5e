import type { Kysely } from "kysely";
import { Every, FOLLOW_TABLES_MS } from "./every.ts";
import type { Store } from "./store.ts";
import type { Database } from "./types.ts";
import { WindowedCounts } from "./windowed-counts.ts";

/** Rows read per query while following, so a node catching up reads in pages. */
const PAGE = 10_000;
/** How often a node deletes its own rows that every window has left. */
const PRUNE_EVERY_MS = 10 * 60_000;

/**
 * Windowed counters summed across the fleet through the store. Each node counts in memory
 * and, every FOLLOW_TABLES_MS (or MXSCREEN_COUNTERS_INTERVAL), writes its own totals for the slots that changed
 * (through the durable queue) and reads the rows the other nodes wrote since the last seq it
 * saw. A check adding to a counter never waits on the network: it gets the fleet's sum as this
 * node last heard it (one or two FOLLOW_TABLES_MS behind the other nodes).
 */
export class FleetCounters {
  private readonly counters = new Map<string, WindowedCounts>();
  private readonly listeners = new Map<string, (key: string, now: number) => void>();
  private lastSeq = -1;
  private prunedAt = 0;
  private exchangedAt = 0;
  private readonly following: Every;

  /**
   * `everyMs`: MXSCREEN_COUNTERS_INTERVAL, how often this node writes its counts and reads the others'.
   * `writer`: the name its rows carry; each of a node's MXSCREEN_PROCESSES counts on its own, so
   * each needs a name of its own (`node/2`), or their totals for one slot would replace each other.
   */
  constructor(
    private readonly store: Store,
    onError: (error: Error) => void,
    everyMs = FOLLOW_TABLES_MS,
    private readonly writer = store.node,
  ) {
    this.following = new Every("following the fleet's counters", everyMs, () => this.follow(store.db), onError);
  }

  /** The counter `name` (a stable kebab-case id, as stored), counted over `windowMs`. */
  counter(name: string, windowMs: number): WindowedCounts {
    const known = this.counters.get(name);
    if (known !== undefined) {
      if (known.windowMs !== windowMs) throw new Error(`counter ${name} is already counted over ${known.windowMs} ms, not ${windowMs} ms`);
      return known;
    }
    const counts = new WindowedCounts(windowMs);
    this.counters.set(name, counts);
    return counts;
  }

  /** Each counter's name, window and keys held, for /metrics. */
  describe(): { name: string; windowMs: number; keys: number; evicted: number }[] {
    return [...this.counters].map(([name, counts]) => ({ name, windowMs: counts.windowMs, keys: counts.size, evicted: counts.evicted }));
  }

  /** When this node last handed its counts to the queue and read the other nodes' (0: not since start). */
  get lastExchange(): number {
    return this.exchangedAt;
  }

  /** `heard` is told of each key of counter `name` whose count another node's row changed, as it is read. */
  listen(name: string, heard: (key: string, now: number) => void): void {
    this.listeners.set(name, heard);
  }

  /** Reads the other nodes' counts still in their windows, then writes and reads every FOLLOW_TABLES_MS. */
  start(): Promise<void> {
    return this.following.start();
  }

  /** Stops following; this node's last counts still go to the queue. */
  async stop(): Promise<void> {
    await this.following.stop();
    for (const [name, counts] of this.counters) {
      for (const own of counts.takeChanged()) this.store.writeCount(name, own.key, own.slot, own.count, this.writer);
    }
  }

  private readonly follow = async (db: Kysely<Database>): Promise<void> => {
    if (this.counters.size === 0) return;
    const now = Date.now();
    for (const [name, counts] of this.counters) {
      counts.sweep(now);
      for (const own of counts.takeChanged()) this.store.writeCount(name, own.key, own.slot, own.count, this.writer);
    }
    const longest = Math.max(...[...this.counters.values()].map((counts) => counts.windowMs + counts.slotMs));
    for (;;) {
      const page = await db.selectFrom("counters").select(["name", "key", "slot", "node", "count", "seq"])
        .where("seq", ">", this.lastSeq).where("node", "<>", this.writer).where("slot", ">=", now - longest)
        .orderBy("seq").limit(PAGE).execute();
      for (const row of page) {
        this.lastSeq = Math.max(this.lastSeq, row.seq);
        this.counters.get(row.name)?.setOther(row.key, row.slot, row.node, row.count, now);
        this.listeners.get(row.name)?.(row.key, now);
      }
      if (page.length < PAGE) break;
    }
    this.exchangedAt = now;
    // Each node deletes its own old rows: no node has to coordinate with another for it.
    if (now - this.prunedAt < PRUNE_EVERY_MS) return;
    this.prunedAt = now;
    await db.deleteFrom("counters").where("node", "=", this.writer).where("slot", "<", now - 2 * longest).execute();
  };
}
