import type { Client, InValue } from "@libsql/client";

/** How long events are kept and how many at most (MXSCREEN_EVENTS_RETENTION, MXSCREEN_EVENTS_MAX_ROWS). */
export interface Retention {
  readonly eventsMs: number;
  readonly eventsMaxRows: number;
}

/** How often a node tries to take or renew the lease and do the housekeeping. */
export const HOUSEKEEPING_EVERY_MS = 5 * 60_000;
/** A lease outlives two rounds of its holder: another node takes over once the holder is gone that long. */
const LEASE_MS = 2 * HOUSEKEEPING_EVERY_MS + 30_000;
const LEASE = "housekeeping";
/** A node that has not beaten for this long is no longer waited for: the change log is trimmed past it, and it reloads from `lists`. */
export const NODE_LIVE_MS = 15 * 60_000;
/**
 * How long a removal's version is kept (in `lists` and in memory): a change older than it that
 * arrives later (from a node's queue after an outage) is ignored until then.
 */
export const REMOVAL_KEPT_MS = 7 * 86_400_000;
/** Rows per DELETE (each its own short write transaction) and at most this many per table per round. */
const BATCH = 5_000;
const MAX_BATCHES = 400;

export const TRIMMED_BELOW = "list_changes_trimmed_below";
export const SIZED_TABLES = ["list_changes", "lists", "events", "greylist", "nodes"] as const;
export type SizedTable = (typeof SIZED_TABLES)[number];

export interface HousekeepingRound {
  /** Rows deleted, by what they were. */
  readonly deleted: {
    readonly expiredEntries: number;
    readonly oldRemovals: number;
    readonly changes: number;
    readonly events: number;
    readonly greylist: number;
  };
  readonly sizes: Record<SizedTable, number>;
}

/**
 * One round of housekeeping if this node holds the lease (taking it when it is free or has
 * lapsed); undefined when another node holds it. Deletes in bounded batches, so no write lock
 * is held for long and the other nodes' writes go on between them.
 */
export async function housekeep(client: Client, node: string, retention: Retention, now: number): Promise<HousekeepingRound | undefined> {
  // The upsert is atomic on its own; no batch, whose transaction takes a pooled connection of
  // its own (three more open files on a `file:` database).
  await client.execute({
    sql:
      `INSERT INTO leases (name, holder, until) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
          WHERE leases.holder = excluded.holder OR leases.until < ?`,
    args: [LEASE, node, now + LEASE_MS, now],
  });
  const holder = await client.execute({ sql: "SELECT holder FROM leases WHERE name = ?", args: [LEASE] });
  if (holder.rows[0]?.[0] !== node) return undefined;

  const expiredEntries = await deleteInBatches(client, "lists", "op = 'set' AND expires_at IS NOT NULL AND expires_at <= ?", [now]);
  const oldRemovals = await deleteInBatches(client, "lists", "op = 'remove' AND created_at < ?", [now - REMOVAL_KEPT_MS]);
  // Every live node has read up to its read_seq; the newest row stays, so max(seq) still tells a
  // starting node where to follow from.
  const bound = Number(
    (await client.execute({
      sql: `SELECT min(coalesce((SELECT min(read_seq) FROM nodes WHERE last_seen > ?), max(seq)), max(seq)) FROM list_changes`,
      args: [now - NODE_LIVE_MS],
    })).rows[0]?.[0] ?? 0,
  );
  const changes = await deleteInBatches(client, "list_changes", "seq < ?", [bound]);
  await mark(client, TRIMMED_BELOW, bound, now);
  let events = await deleteInBatches(client, "events", "at < ?", [now - retention.eventsMs]);
  const cap = (await client.execute({ sql: "SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?", args: [retention.eventsMaxRows] }))
    .rows[0]?.[0];
  if (cap !== undefined && cap !== null) events += await deleteInBatches(client, "events", "id <= ?", [cap]);
  const greylist = await deleteInBatches(client, "greylist", "expires_at < ?", [now]);

  // One statement each, not a read batch (see Store.load).
  const sizes = {} as Record<SizedTable, number>;
  for (const table of SIZED_TABLES) sizes[table] = Number((await client.execute(`SELECT count(*) FROM "${table}"`)).rows[0][0]);
  for (const table of SIZED_TABLES) await client.execute(markStatement(`rows:${table}`, sizes[table], now));
  return { deleted: { expiredEntries, oldRemovals, changes, events, greylist }, sizes };
}

/** The table sizes the housekeeper wrote last. */
export function readSizes(rows: readonly { readonly name: unknown; readonly value: unknown }[]): Partial<Record<SizedTable, number>> {
  const sizes: Partial<Record<SizedTable, number>> = {};
  for (const row of rows) {
    const name = String(row.name);
    if (name.startsWith("rows:")) sizes[name.slice("rows:".length) as SizedTable] = Number(row.value);
  }
  return sizes;
}

async function deleteInBatches(client: Client, table: string, where: string, args: InValue[]): Promise<number> {
  let deleted = 0;
  for (let i = 0; i < MAX_BATCHES; i++) {
    const result = await client.execute({
      sql: `DELETE FROM "${table}" WHERE rowid IN (SELECT rowid FROM "${table}" WHERE ${where} LIMIT ${BATCH})`,
      args,
    });
    deleted += result.rowsAffected;
    if (result.rowsAffected < BATCH) break;
  }
  return deleted;
}

function markStatement(name: string, value: number, now: number) {
  return {
    sql:
      "INSERT INTO store_marks (name, value, at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value, at = excluded.at",
    args: [name, value, now],
  };
}

async function mark(client: Client, name: string, value: number, now: number): Promise<void> {
  await client.execute(markStatement(name, value, now));
}
