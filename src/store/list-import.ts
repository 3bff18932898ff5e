import { formatPrefix, parsePrefix } from "../ip/address.ts";
import { checkAddress, checkListRequest } from "./list-input.ts";
import type { ListFileLine } from "./list-file.ts";
import type { ListWrite, Store } from "./store.ts";

/** Entries written per transaction: big enough that a million lines take seconds, small enough to report progress. */
const BATCH = 20_000;
/** Refused lines kept in the report; the count goes on past it. */
const MAX_REFUSED_SHOWN = 1_000;

export interface ImportOptions {
  /** The list of lines that name none (no Postfix action word). */
  readonly kind: "ban" | "allow";
  readonly ttl?: string;
  /** The reason of lines that give none. */
  readonly reason?: string;
  /** Confirms prefixes wider than an IPv4 /8 or an IPv6 /16, line by line as `ban add`. */
  readonly force?: boolean;
  /** How this caller confirms (`--force`, `force=true`), for the refusals. */
  readonly confirm: string;
  /** Each list's TTL when neither the line nor the import gives one (null: no end). */
  readonly defaultTtlMs: Readonly<Record<"ban" | "allow", number | null>>;
}

export interface RefusedLine {
  readonly line: number;
  readonly text: string;
  readonly error: string;
}

export interface ImportReport {
  /** Entries written (new, or in force for less long than the import gives them). */
  readonly added: number;
  /** Written per list: a postscreen file's permit lines go to the allow list whatever the command. */
  readonly lists: Readonly<Record<"ban" | "allow", number>>;
  /** Already in force at least as long: left as they were. */
  readonly present: number;
  readonly refusedCount: number;
  /** The first MAX_REFUSED_SHOWN of them, in order. */
  readonly refused: readonly RefusedLine[];
  /** The last line read; with an error, the lines up to the last batch written are in force. */
  readonly lastLine: number;
}

export type ImportProgress = (report: ImportReport) => void;

/**
 * Puts the entries of a list file or feed on the lists, in batches straight to the database
 * (each batch one transaction), each line checked as `ban add` checks one address. An entry
 * already in force with the same or a later end is counted as present and left alone; so is
 * a line repeating an earlier one.
 */
export async function importList(
  store: Store,
  lines: Iterable<ListFileLine>,
  options: ImportOptions,
  progress?: ImportProgress,
): Promise<ImportReport> {
  const now = Date.now();
  const inForce = { ban: await store.expiries("ban", now), allow: await store.expiries("allow", now) };
  let added = 0;
  let present = 0;
  let refusedCount = 0;
  let lastLine = 0;
  const lists = { ban: 0, allow: 0 };
  const refused: RefusedLine[] = [];
  let batch: { readonly kind: "ban" | "allow"; readonly write: ListWrite; readonly line: number }[] = [];
  const report = (): ImportReport => ({ added, lists: { ...lists }, present, refusedCount, refused: [...refused], lastLine });
  const refuse = (line: RefusedLine) => {
    refusedCount++;
    if (refused.length < MAX_REFUSED_SHOWN) refused.push(line);
  };
  const flush = async () => {
    if (batch.length === 0) return;
    try {
      await store.setMany(batch, Date.now());
    } catch (error) {
      throw new ImportError((error as Error).message, { ...report(), lastLine: batch[0].line - 1 });
    }
    added += batch.length;
    for (const { kind } of batch) lists[kind]++;
    batch = [];
    progress?.(report());
  };
  for (const line of lines) {
    lastLine = line.line;
    if (line.type === "refused") {
      refuse(line);
      continue;
    }
    const kind = line.list === "allow" || (line.list === undefined && options.kind === "allow") ? "allow" : "ban";
    const checked = checkListRequest(
      { address: line.address, ttl: line.ttl ?? options.ttl, reason: line.reason ?? options.reason, force: options.force },
      options.defaultTtlMs[kind],
      options.confirm,
    );
    if (!checked.ok) {
      refuse({ line: line.line, text: line.address, error: checked.error });
      continue;
    }
    const key = formatPrefix(checked.value.prefix);
    const expiresAt = checked.value.ttlMs === null ? null : now + checked.value.ttlMs;
    const held = inForce[kind].get(key);
    if (held !== undefined && (held === null || (expiresAt !== null && held >= expiresAt))) {
      present++;
      continue;
    }
    inForce[kind].set(key, expiresAt);
    batch.push({ kind, write: checked.value, line: line.line });
    if (batch.length >= BATCH) await flush();
  }
  await flush();
  return report();
}

/** The database refused a batch: the report says what was written before it. */
export class ImportError extends Error {
  constructor(message: string, readonly report: ImportReport) {
    super(message);
  }
}

export interface RemovalReport {
  readonly removed: number;
  /** Not on the list (or already expired): nothing to remove. */
  readonly absent: number;
  readonly refused: readonly RefusedLine[];
}

/** Takes a feed's deleted decisions off the list, through the queue as `ban rm` does. */
export async function removeListed(
  store: Store,
  kind: "ban" | "allow",
  lines: readonly ListFileLine[],
  reason: string,
): Promise<RemovalReport> {
  if (lines.length === 0) return { removed: 0, absent: 0, refused: [] };
  const now = Date.now();
  const inForce = new Set((await store.list(kind, now)).map((row) => row.prefix));
  let removed = 0;
  let absent = 0;
  const refused: RefusedLine[] = [];
  for (const line of lines) {
    if (line.type === "refused") {
      refused.push(line);
      continue;
    }
    const checked = checkAddress(line.address);
    if (!checked.ok) {
      refused.push({ line: line.line, text: line.address, error: checked.error });
      continue;
    }
    if (!inForce.delete(checked.value)) {
      absent++;
      continue;
    }
    store.remove(kind, parsePrefix(checked.value)!, now, reason);
    removed++;
  }
  return { removed, absent, refused };
}
