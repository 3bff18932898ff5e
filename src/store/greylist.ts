import type { Kysely } from "kysely";
import type { Database, GreylistRow } from "./types.ts";

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

/**
 * Greylisting triplets in the shared database, so that a sender retrying through another node
 * of the fleet is not deferred again. A database that cannot be reached never holds mail up:
 * the triplet passes and the error is reported.
 */
export class GreylistStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly node: string,
    private readonly config: GreylistConfig,
    private readonly onError: (error: Error) => void,
  ) {}

  async consult(triplet: string, now: number): Promise<GreylistVerdict> {
    try {
      const row = await this.db.selectFrom("greylist").selectAll().where("triplet", "=", triplet).executeTakeFirst();
      const next = nextTriplet(row, triplet, now, this.config);
      if (next.row !== row) {
        await this.db.insertInto("greylist").values({ ...next.row, node: this.node })
          .onConflict((oc) => oc.column("triplet").doUpdateSet({ ...next.row, node: this.node })).execute();
      }
      return next.verdict;
    } catch (error) {
      this.onError(new Error(`greylist lookup failed, the triplet passes: ${(error as Error).message}`, { cause: error }));
      return "pass";
    }
  }
}
