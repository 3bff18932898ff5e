import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import process from "node:process";
import { parsePrefix } from "../ip/address.ts";
import type { ListEntry, ListKind } from "./types.ts";

/** What a node read back from its local copy: the entries and when they were written. */
export interface SavedLists {
  readonly savedAt: number;
  readonly entries: readonly ListEntry[];
}

const FORMAT = "mxscreen-lists 1";
const KINDS: readonly ListKind[] = ["ban", "pass", "allow"];
/** Like the journal, it says what this node decided about clients: nobody else needs to read it. */
const FILE_MODE = 0o600;

/**
 * The lists a node follows, kept in a file of its own beside the write queue, so that a
 * restart while the shared database is unreachable still screens with what the node knew.
 * One JSON line of header, then one entry per line; written whole to a temporary file,
 * fsynced and renamed over the old one, so a crash leaves the old copy or the new, never half.
 */
export class LocalCopy {
  constructor(readonly path: string) {}

  /** undefined when there is no copy yet; throws when there is one that cannot be read. */
  read(): SavedLists | undefined {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (error) {
      if ((error as { code?: string }).code === "ENOENT") return undefined;
      throw error;
    }
    const [header, ...lines] = text.split("\n");
    const head = JSON.parse(header) as { format?: unknown; savedAt?: unknown };
    if (head.format !== FORMAT || typeof head.savedAt !== "number") throw new Error(`${this.path} is not a copy of the lists written by this mxscreen (header ${header.slice(0, 80)})`);
    const entries: ListEntry[] = [];
    for (const line of lines) {
      if (line === "") continue;
      const entry = checkEntry(JSON.parse(line));
      if (entry !== undefined) entries.push(entry);
    }
    return { savedAt: head.savedAt, entries };
  }

  write(entries: Iterable<ListEntry>, now: number): void {
    mkdirSync(dirname(this.path), { recursive: true });
    const temporary = `${this.path}.${process.pid}.tmp`;
    const fd = openSync(temporary, "w", FILE_MODE);
    try {
      const lines = [JSON.stringify({ format: FORMAT, savedAt: now })];
      for (const entry of entries) lines.push(JSON.stringify(entry));
      const bytes = new TextEncoder().encode(lines.join("\n") + "\n");
      for (let written = 0; written < bytes.length;) written += writeSync(fd, bytes, written);
      fsyncSync(fd);
    } catch (error) {
      closeSync(fd);
      rmSync(temporary, { force: true });
      throw error;
    }
    closeSync(fd);
    renameSync(temporary, this.path);
  }
}

/** An entry from the file, or undefined for a line that is not one: it is a copy, the database stays the truth. */
function checkEntry(value: unknown): ListEntry | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const e = value as Record<string, unknown>;
  const text = (v: unknown) => typeof v === "string" ? v : null;
  if (!KINDS.includes(e.kind as ListKind) || typeof e.prefix !== "string" || parsePrefix(e.prefix) === null) return undefined;
  if (typeof e.createdAt !== "number" || (e.expiresAt !== null && typeof e.expiresAt !== "number") || typeof e.node !== "string") return undefined;
  return {
    kind: e.kind as ListKind,
    prefix: e.prefix,
    createdAt: e.createdAt,
    expiresAt: e.expiresAt as number | null,
    node: e.node,
    check: text(e.check),
    reason: text(e.reason),
  };
}
