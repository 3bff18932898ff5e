import process from "node:process";
import { escapeLogText } from "./escape.ts";
import { formatPostfix } from "./postfix.ts";

export type LogValue = string | number | boolean | undefined;

/** One event: `event` is the upper-case tag of the log grammar (README: The log) (`PREGREET`, `PASS NEW`, ...). */
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

export type LogFormat = "text" | "json" | "postfix";

const BARE = /^[A-Za-z0-9._:/@\[\]+,=-]+$/;

/** The one place where values, client text included, are escaped for a log line. */
function formatValue(value: string | number | boolean): string {
  const text = String(value);
  return BARE.test(text) ? text : `"${escapeLogText(text)}"`;
}

/**
 * `key=value` pairs of the fields that have a value, appended to `head`; `skip` is left out.
 * Built as one string, without the arrays and objects of entries/filter/map: it runs once per
 * connection, on the accept loop's thread (bench profile).
 */
function formatLogfmt(head: string, fields: Record<string, LogValue>, skip?: string): string {
  let line = head;
  for (const key in fields) {
    const value = fields[key];
    if (value === undefined || key === skip) continue;
    line += `${line === "" ? "" : " "}${key}=${formatValue(value)}`;
  }
  return line;
}

/**
 * JSON's own escaping, once: a parser gets back exactly the text the client sent. Everything
 * outside printable ASCII becomes `\uXXXX`, so the line stays one line of ASCII as in text.
 */
function jsonLine(fields: Record<string, LogValue>): string {
  return JSON.stringify(fields).replace(/[\u007f-\uffff]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

export function createLogger(
  format: LogFormat,
  node: string,
  write: (line: string) => void,
  now: () => Date = () => new Date(),
  pid: number = process.pid,
): Logger {
  const emit = (fields: Record<string, LogValue>) => {
    const time = now();
    if (format === "postfix") {
      for (const line of formatPostfix(fields, time, { hostname: node, pid })) write(line);
      return;
    }
    // The listener a client reached is in the start line; only postscreen's CONNECT names it per connection.
    if (format === "text") return write(formatLogfmt(`time=${formatValue(time.toISOString())} node=${formatValue(node)}`, fields, "local"));
    const { local: _local, ...kept } = fields;
    write(jsonLine({ level: "info", time: time.toISOString(), node, ...kept }));
  };
  return {
    log: (entry) => emit(entry),
    note: (level, message, fields = {}) => emit({ level, msg: message, ...fields }),
  };
}
