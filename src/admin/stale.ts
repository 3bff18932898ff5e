import { contains, formatIP, type IP, parsePrefix } from "../ip/address.ts";
import type { Explanation } from "../store/explain.ts";
import type { FleetStats } from "../store/stats.ts";
import type { Store } from "../store/store.ts";
import type { ListKind } from "../store/types.ts";

/** Why an answer comes from this node's memory rather than the shared database, and since when. */
export interface Staleness {
  readonly reason: string;
  /** The last time the database answered this node; null: not since this process started. */
  readonly lastContact: string | null;
}

/** Set on every answer read from memory, so a script need not parse the body to notice. */
export const STALE_HEADER = "x-mxscreen-stale";

/** Reads first let this node's own recent writes land, so the API shows what the log just said. */
const READ_WAIT_MS = 1_000;

/**
 * A read of the shared database, or what this node holds in memory when the database is known
 * to be away or does not answer within its deadline: an operator looking during an outage gets
 * an answer at once, marked stale, never an error or a hang.
 */
export async function fromStoreOrMemory<T>(
  store: Store,
  read: () => Promise<T>,
  memory: () => T,
): Promise<{ value: T; stale?: Staleness }> {
  const staleness = (reason: string): Staleness => {
    const { lastContact } = store.health();
    return { reason, lastContact: lastContact === 0 ? null : new Date(lastContact).toISOString() };
  };
  const health = store.health();
  if (!health.reachable) return { value: memory(), stale: staleness(`database unreachable: ${health.lastError ?? "no answer"}`) };
  try {
    await store.flush(READ_WAIT_MS);
    return { value: await read() };
  } catch (error) {
    return { value: memory(), stale: staleness(`database read failed: ${(error as Error).message}`) };
  }
}

/** The fleet's numbers as far as this node knows them without the database: its lists; the verdicts and nodes live only there. */
export function fleetFromMemory(store: Store, now: number): FleetStats {
  const count = (kind: ListKind) => store.entries(kind, now).length;
  return {
    lists: { ban: count("ban"), pass: count("pass"), allow: count("allow") },
    events: {},
    topOffenders: [],
    recent: [],
    nodes: [],
    observed: null,
  };
}

/** The entries in this node's memory that cover `ip`; the history of changes and verdicts lives only in the database. */
export function explainFromMemory(store: Store, ip: IP, now: number): Explanation {
  const lists = (["allow", "ban", "pass"] as const).flatMap((kind) => store.entries(kind, now))
    .filter((entry) => {
      const prefix = parsePrefix(entry.prefix);
      return prefix !== null && contains(prefix, ip);
    })
    .map((entry) => ({
      at: entry.createdAt,
      kind: entry.kind,
      prefix: entry.prefix,
      op: "set",
      expiresAt: entry.expiresAt,
      node: entry.node,
      check: entry.check,
      reason: entry.reason,
      evidence: null,
    }));
  return { ip: formatIP(ip), lists, events: [] };
}
