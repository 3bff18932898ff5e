import type { Kysely } from "kysely";
import { Every, FOLLOW_TABLES_MS } from "../store/every.ts";
import type { Store } from "../store/store.ts";
import type { Database, GreylistRow } from "../store/types.ts";

/** A triplet's state as this node holds it. */
export type Triplet = Omit<GreylistRow, "node" | "seq">;

export interface GreylistConfig {
  /** A retry sooner than this after the first attempt is deferred again. */
  readonly delayMs: number;
  /** A first attempt not retried within this is forgotten. */
  readonly windowMs: number;
  /** How long a passed triplet stays passed after its last use. */
  readonly passTtlMs: number;
  /** Triplets held in memory at most (MXSCREEN_GREYLIST_MAX_TRIPLETS); past it the least recently changed go first. */
  readonly maxTriplets?: number;
}

export type GreylistVerdict = "pass" | "defer";

/** The triplet's next state at `now` (OpenBSD spamd's grey → white), as a pure function of the row. */
export function nextTriplet(row: Triplet | undefined, triplet: string, now: number, config: GreylistConfig): {
  verdict: GreylistVerdict;
  row: Triplet;
} {
  if (row === undefined || row.expires_at <= now) {
    return { verdict: "defer", row: { triplet, first_seen: now, passed_at: null, expires_at: now + config.windowMs } };
  }
  if (row.passed_at !== null || now - row.first_seen >= config.delayMs) {
    return { verdict: "pass", row: { ...row, passed_at: row.passed_at ?? now, expires_at: now + config.passTtlMs } };
  }
  return { verdict: "defer", row };
}

/** Rows read per query while following, so a node catching up after a long outage reads in pages. */
const PAGE = 10_000;

/**
 * Greylisting triplets shared by the fleet, held in this node's memory so that a RCPT never
 * waits on the database: each node writes its triplets' new states through the store's durable
 * queue (in order, never lost) and reads the others' every FOLLOW_TABLES_MS, by the seq the
 * database gives each change. A sender retrying through another node minutes later
 * finds its triplet there; two nodes that see a new triplet within FOLLOW_TABLES_MS of each other
 * each defer it once, which only costs the sender the retry it makes anyway.
 *
 * At most `maxTriplets` are held (a flood of new senders and recipients cannot take the
 * node's memory): past it the triplet changed least recently is forgotten here, though not in
 * the database; a sender it belonged to is deferred once more, as a new one.
 */
export class GreylistStore {
  /** In the order they last changed (a Map keeps insertion order), the oldest first. */
  private readonly rows = new Map<string, Triplet>();
  private lastSeq = -1;
  private forgotten = 0;
  /** Not following yet: it starts at the first consult (`lazy`). */
  private idle = false;

  private readonly following: Every;

  private constructor(private readonly store: Store, private readonly config: GreylistConfig, onError: (error: Error) => void) {
    this.following = new Every(
      "following the greylist triplets of the other nodes",
      FOLLOW_TABLES_MS,
      () => this.follow(store.db),
      onError,
    );
  }

  /** Loads the triplets in force and follows the changes from then on. */
  static async open(store: Store, config: GreylistConfig, onError: (error: Error) => void): Promise<GreylistStore> {
    const greylist = new GreylistStore(store, config, onError);
    await greylist.following.start();
    return greylist;
  }

  /**
   * A store that reads nothing until its first consult, then follows as `open`'s does: for a
   * node that greylists only while a domain is under harvest (src/harvest), which an idle fleet
   * must not pay a query every FOLLOW_TABLES_MS for. The consults made before its first read
   * has answered decide from this node's own triplets alone.
   */
  static lazy(store: Store, config: GreylistConfig, onError: (error: Error) => void): GreylistStore {
    const greylist = new GreylistStore(store, config, onError);
    greylist.idle = true;
    return greylist;
  }

  stop(): Promise<void> {
    return this.following.stop();
  }

  get size(): number {
    return this.rows.size;
  }

  /** Triplets forgotten since start because more than `maxTriplets` were held. */
  get evicted(): number {
    return this.forgotten;
  }

  consult(triplet: string, now: number): GreylistVerdict {
    if (this.idle) {
      this.idle = false;
      void this.following.start();
    }
    const row = this.rows.get(triplet);
    const next = nextTriplet(row, triplet, now, this.config);
    if (next.row !== row) {
      this.hold(next.row);
      this.store.writeGreylist(next.row);
    }
    return next.verdict;
  }

  /** Holds a triplet's new state as the most recent, forgetting the oldest past the cap. */
  private hold(row: Triplet): void {
    this.rows.delete(row.triplet);
    this.rows.set(row.triplet, row);
    const max = this.config.maxTriplets ?? Infinity;
    for (const oldest of this.rows.keys()) {
      if (this.rows.size <= max) break;
      this.rows.delete(oldest);
      this.forgotten++;
    }
  }

  private readonly follow = async (db: Kysely<Database>): Promise<void> => {
    const now = Date.now();
    for (const [triplet, row] of this.rows) if (row.expires_at <= now) this.rows.delete(triplet);
    for (;;) {
      const page = await db.selectFrom("greylist").selectAll().where("seq", ">", this.lastSeq).orderBy("seq").limit(PAGE).execute();
      for (const { node: _, seq, ...row } of page) {
        this.lastSeq = Math.max(this.lastSeq, seq);
        const held = this.rows.get(row.triplet);
        if (row.expires_at > now && (held === undefined || held.expires_at <= row.expires_at)) this.hold(row);
      }
      if (page.length < PAGE) return;
    }
  };
}
