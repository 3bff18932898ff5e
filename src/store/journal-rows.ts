import { formatPrefix, parsePrefix } from "../ip/address.ts";

/** One write to the shared database, as data, so that it can wait on disk for the database. */
export interface WriteOp {
  readonly id: string;
  readonly table: Table;
  readonly row: Readonly<Record<string, string | number | null>>;
}

export type Table = "list_changes" | "events" | "greylist" | "counters";

type ColumnType = "text" | "text?" | "integer" | "date" | "date?" | "time" | "prefix" | readonly string[];

/**
 * The only column names that reach SQL, per table, in the order statements list them: a row
 * read back from the journal is data, and its keys are checked against this list, never used.
 * `time` is a creation time: a write this node queued cannot have been made in the future;
 * `date` is any other time, which must still make a valid Date (explain and the CLI print it).
 */
export const COLUMNS: Readonly<Record<Table, Readonly<Record<string, ColumnType>>>> = {
  list_changes: {
    kind: ["ban", "pass", "allow"],
    prefix: "prefix",
    op: ["set", "remove"],
    created_at: "time",
    expires_at: "date?",
    node: "text",
    check_id: "text?",
    reason: "text?",
    evidence: "text?",
  },
  events: {
    at: "time",
    node: "text",
    client_ip: "text",
    client_port: "integer",
    event: "text",
    check_id: "text?",
    action: "text",
    evidence: "text",
  },
  greylist: {
    triplet: "text",
    first_seen: "time",
    passed_at: "date?",
    expires_at: "date",
    node: "text",
  },
  counters: {
    name: "text",
    key: "text",
    slot: "date",
    node: "text",
    count: "integer",
  },
};

/** How far a journal row's creation time may lie ahead of the clock that reads it back (clock steps, NTP). */
const MAX_FUTURE_MS = 24 * 3_600_000;
const MAX_ID = 100;
/** The last millisecond a JavaScript Date can hold (ECMA-262 21.4.1.1). */
const MAX_DATE_MS = 8.64e15;

export function columnsOf(table: Table): readonly string[] {
  return Object.keys(COLUMNS[table]);
}

/** A journal line as a write, or why it is not one we could have written. */
export function checkJournalLine(line: string, now: number): { ok: true; op: WriteOp } | { ok: false; error: string } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, error: "not JSON (a write cut short by a crash or a full disk)" };
  }
  if (typeof value !== "object" || value === null) return { ok: false, error: "not an object" };
  const { id, table, row } = value as Record<string, unknown>;
  if (typeof id !== "string" || id === "" || id.length > MAX_ID) return { ok: false, error: "no op id" };
  if (typeof table !== "string" || !Object.hasOwn(COLUMNS, table)) {
    return { ok: false, error: `unknown table ${JSON.stringify(String(table)).slice(0, 80)}` };
  }
  if (typeof row !== "object" || row === null || Array.isArray(row)) return { ok: false, error: "no row" };
  const columns = COLUMNS[table as Table];
  const extra = Object.keys(row).find((key) => !Object.hasOwn(columns, key));
  if (extra !== undefined) return { ok: false, error: `unknown column ${JSON.stringify(extra).slice(0, 80)} for ${table}` };
  const checked: Record<string, string | number | null> = {};
  for (const [column, type] of Object.entries(columns)) {
    if (!Object.hasOwn(row, column)) return { ok: false, error: `${table}.${column} is missing` };
    const cell = (row as Record<string, unknown>)[column];
    const problem = checkCell(type, cell, now);
    if (problem !== undefined) return { ok: false, error: `${table}.${column} ${problem}` };
    checked[column] = cell as string | number | null;
  }
  return { ok: true, op: { id, table: table as Table, row: checked } };
}

function checkCell(type: ColumnType, cell: unknown, now: number): string | undefined {
  if (typeof type !== "string") return typeof cell === "string" && type.includes(cell) ? undefined : `is not one of ${type.join(", ")}`;
  if (cell === null) return type.endsWith("?") ? undefined : "is null";
  switch (type) {
    case "text":
    case "text?":
      return typeof cell === "string" ? undefined : "is not text";
    case "integer":
      return Number.isSafeInteger(cell) ? undefined : "is not a whole number";
    case "date":
    case "date?":
      if (!Number.isSafeInteger(cell)) return "is not a whole number";
      return Math.abs(cell as number) <= MAX_DATE_MS ? undefined : `is not a valid date (${cell})`;
    case "time":
      if (!Number.isSafeInteger(cell)) return "is not a whole number";
      return (cell as number) > now + MAX_FUTURE_MS ? `lies in the future (${cell})` : undefined;
    case "prefix": {
      const prefix = typeof cell === "string" ? parsePrefix(cell) : null;
      return prefix && formatPrefix(prefix) === cell ? undefined : "is not a CIDR prefix as we write them";
    }
  }
}
