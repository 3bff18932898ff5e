import type { Store } from "./store.ts";
import type { GreylistRow } from "./types.ts";

export interface GreylistConfig {
  /** A retry sooner than this after the first attempt is deferred again. */
  readonly delayMs: number;
  /** A first attempt not retried within this is forgotten. */
  readonly windowMs: number;
  /** How long a passed triplet stays passed after its last use. */
  readonly passTtlMs: number;
}

export type GreylistVerdict = "pass" | "defer";

/** The triplet's next state at `now` (OpenBSD spamd's grey → white), as a pure function of the row. */
export function nextTriplet(row: Omit<GreylistRow, "node"> | undefined, triplet: string, now: number, config: GreylistConfig): {
  verdict: GreylistVerdict;
  row: Omit<GreylistRow, "node">;
} {
  if (row === undefined || row.expires_at <= now) {
    return { verdict: "defer", row: { triplet, first_seen: now, passed_at: null, expires_at: now + config.windowMs } };
  }
  if (row.passed_at !== null || now - row.first_seen >= config.delayMs) {
    return { verdict: "pass", row: { ...row, passed_at: row.passed_at ?? now, expires_at: now + config.passTtlMs } };
  }
  return { verdict: "defer", row };
}

/** How long a consult waits for its own write to land, so the next node asked sees it. */
const WRITE_WAIT_MS = 1_000;

/**
 * Greylisting triplets in the shared database, so that a sender retrying through another node
 * of the fleet is not deferred again. Writes go through the store's durable queue like bans and
 * passes. A database that cannot be reached never holds mail up: the triplet passes, the error
 * is reported, and its first sighting waits in the queue for the database to come back.
 */
export class GreylistStore {
  constructor(private readonly store: Store, private readonly config: GreylistConfig, private readonly onError: (error: Error) => void) {}

  async consult(triplet: string, now: number): Promise<GreylistVerdict> {
    let row: GreylistRow | undefined;
    // Known to be away: no RCPT waits for a deadline to learn it again.
    if (!this.store.health().reachable) return this.passUnasked(triplet, now);
    try {
      row = await this.store.db.selectFrom("greylist").selectAll().where("triplet", "=", triplet).executeTakeFirst();
    } catch (error) {
      this.onError(new Error(`greylist lookup failed, the triplet passes: ${(error as Error).message}`, { cause: error }));
      return this.passUnasked(triplet, now);
    }
    const next = nextTriplet(row, triplet, now, this.config);
    if (next.row !== row) {
      this.store.writeGreylist(next.row);
      if (this.store.health().reachable) await this.store.flush(WRITE_WAIT_MS);
    }
    return next.verdict;
  }

  /** The triplet passes; its first sighting waits in the queue for the database. */
  private passUnasked(triplet: string, now: number): GreylistVerdict {
    this.store.writeGreylist(nextTriplet(undefined, triplet, now, this.config).row);
    return "pass";
  }
}
