import type { Explanation } from "../store/explain.ts";
import type { ListEntry, ListKind, ListRow } from "../store/types.ts";

/**
 * The one JSON shape of a ban, pass or allow entry, wherever it is shown: the API's lists and
 * its answer to an addition, explain, and the CLI's --json (local or remote). Times are ISO
 * 8601 in UTC; `expiresAt` null means the entry lasts until removed; `check` is the check id
 * that made it (`manual` for the CLI and the API).
 */
export interface ListEntryJson {
  readonly kind: ListKind;
  readonly prefix: string;
  readonly createdAt: string;
  readonly expiresAt: string | null;
  readonly node: string;
  readonly check: string | null;
  readonly reason: string | null;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

export function entryJson(entry: ListEntry): ListEntryJson {
  return {
    kind: entry.kind,
    prefix: entry.prefix,
    createdAt: new Date(entry.createdAt).toISOString(),
    expiresAt: iso(entry.expiresAt),
    node: entry.node,
    check: entry.check,
    reason: entry.reason,
  };
}

export function rowJson(row: ListRow): ListEntryJson {
  return entryJson({
    kind: row.kind,
    prefix: row.prefix,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    node: row.node,
    check: row.check_id,
    reason: row.reason,
  });
}

/** Explain with the same entry shape for every list change (plus what the change was) and ISO times. */
export function explanationJson(explanation: Explanation) {
  return {
    ip: explanation.ip,
    lists: explanation.lists.map((change) => ({
      ...entryJson({
        kind: change.kind as ListKind,
        prefix: change.prefix,
        createdAt: change.at,
        expiresAt: change.expiresAt,
        node: change.node,
        check: change.check,
        reason: change.reason,
      }),
      op: change.op,
      evidence: change.evidence,
    })),
    events: explanation.events.map((event) => ({ ...event, at: new Date(event.at).toISOString() })),
  };
}
