import { escapeLogText } from "./escape.ts";

export type LogValue = string | number | boolean | undefined;

/** One event: `event` is the upper-case tag from SPEC §2 (`PREGREET`, `PASS NEW`, ...). */
export interface LogEntry {
  readonly event: string;
  readonly client?: string;
  readonly [field: string]: LogValue;
}

export interface Logger {
  log(entry: LogEntry): void;
  /** Operational messages (start-up, store trouble); `level` is info, warn or error. */
  note(level: "info" | "warn" | "error", message: string, fields?: Record<string, LogValue>): void;
}

const BARE = /^[A-Za-z0-9._:/@\[\]+,=-]+$/;

/** The one place where values, client text included, are escaped for a log line. */
function formatValue(value: string | number | boolean): string {
  const text = String(value);
  return BARE.test(text) ? text : `"${escapeLogText(text)}"`;
}

export function formatLogfmt(fields: Record<string, LogValue>): string {
  return Object.entries(fields)
    .filter((kv): kv is [string, string | number | boolean] => kv[1] !== undefined)
    .map(([key, value]) => `${key}=${formatValue(value)}`)
    .join(" ");
}

/** JSON with the same escaping as text, so both formats stay printable ASCII on one line. */
function jsonLine(fields: Record<string, LogValue>): string {
  const escaped = Object.fromEntries(
    Object.entries(fields).map(([k, v]) => [k, typeof v === "string" ? escapeLogText(v) : v]),
  );
  return JSON.stringify(escaped);
}

export function createLogger(
  format: "text" | "json",
  node: string,
  write: (line: string) => void,
  now: () => Date = () => new Date(),
): Logger {
  const emit = (fields: Record<string, LogValue>) => {
    const all = { time: now().toISOString(), node, ...fields };
    write(format === "json" ? jsonLine(all) : formatLogfmt(all));
  };
  return {
    log: (entry) => emit({ ...entry }),
    note: (level, message, fields = {}) => emit({ level, msg: message, ...fields }),
  };
}
