import { readFileSync } from "node:fs";
import { type FileHandle, mkdir, open, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import process from "node:process";
import { type IP, parsePrefix, type Prefix } from "../ip/address.ts";
import type { ListKind } from "./types.ts";

/** One entry in force as the copy keeps it: what the index needs, the prefix as numbers. */
export interface CopiedEntry {
  readonly kind: ListKind;
  readonly range: Prefix;
  readonly createdAt: number;
  /** null: never expires. */
  readonly expiresAt: number | null;
  readonly node: string;
  readonly check: string | null;
  readonly reason: string | null;
}

/** What a node read back from its local copy: when it was written, and its entries (decoded as they are walked). */
export interface SavedLists {
  readonly savedAt: number;
  readonly count: number;
  readonly entries: Iterable<CopiedEntry>;
}

/** Like the journal, it says what this node decided about clients: nobody else needs to read it. */
const FILE_MODE = 0o600;
const KINDS: readonly ListKind[] = ["ban", "pass", "allow"];
const MAGIC = "MXLISTS2";
const HEADER = 16;
/**
 * An entry: creation time and expiry (f64, Infinity: never), the address (16 bytes: IPv4 in
 * the first word, IPv6 as eight 16-bit groups), kind, family, length, one spare byte, node id
 * (u16), check id + 1 and reason id + 1 (0: none), one spare word. Little-endian throughout.
 */
const RECORD = 48;
/** Strings' total, entries, strings, checksum, "MXLE". */
const TRAILER = 24;
const END = 0x454c584d; // "MXLE" read as a little-endian word
const CHUNK = 1 << 20;
/** The earlier copy's name, read when there is no copy in this format yet. */
const LEGACY_NAME = "lists-copy.jsonl";

/**
 * The lists a node follows, kept in a file of its own beside the write queue, so that a
 * restart while the shared database is unreachable still screens with what the node knew.
 * Binary, written as the index is walked (a megabyte at a time, never the whole copy in memory):
 * a header, fixed-size entries, the names and reasons they refer to by number, and a trailer
 * with the counts and a checksum of everything before it, so a copy cut short or damaged is
 * refused whole rather than half believed. Written to a temporary file, fsynced and renamed over
 * the old one, so a crash leaves the old copy or the new, never half. A copy in the earlier
 * format (one JSON line per entry, `lists-copy.jsonl` beside it) is still read, until the first
 * copy in this one replaces it.
 */
export class LocalCopy {
  private readonly legacyPath: string | undefined;

  constructor(readonly path: string) {
    const legacy = join(dirname(path), LEGACY_NAME);
    this.legacyPath = legacy === path ? undefined : legacy;
  }

  /** undefined when there is no copy yet; throws, naming the file and what is wrong, when there is one that cannot be trusted. */
  read(): SavedLists | undefined {
    const bytes = readIfThere(this.path);
    if (bytes !== undefined) return decode(this.path, bytes);
    const legacy = this.legacyPath === undefined ? undefined : readIfThere(this.legacyPath);
    return legacy === undefined ? undefined : decodeLegacy(this.legacyPath!, new TextDecoder().decode(legacy));
  }

  /**
   * Writes `entries` as the new copy, a megabyte at a time through the runtime's asynchronous
   * file calls (ten million entries are half a gigabyte): the fsync of a copy that size takes
   * seconds on a busy disk, and on the event loop it held every connection meanwhile. Entries
   * that change during the write may be written as they were or as they became, which a copy a
   * few seconds old is anyway.
   */
  async write(entries: Iterable<CopiedEntry>, now: number): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const temporary = `${this.path}.${process.pid}.tmp`;
    const file = await open(temporary, "w", FILE_MODE);
    try {
      const out = new ChunkWriter(file);
      const header = out.reserve(HEADER);
      for (let i = 0; i < MAGIC.length; i++) header.setUint8(i, MAGIC.charCodeAt(i));
      header.setFloat64(8, now, true);
      const strings = new Strings();
      let count = 0;
      for (const entry of entries) {
        encode(out.reserve(RECORD), entry, strings);
        if (out.filled) await out.drain();
        count++;
      }
      const encoder = new TextEncoder();
      let stringBytes = 0;
      for (const text of strings.list) {
        const utf8 = encoder.encode(text);
        const padded = (utf8.length + 3) & ~3;
        const at = out.reserve(4 + padded);
        at.setUint32(0, utf8.length, true);
        new Uint8Array(at.buffer, at.byteOffset + 4, utf8.length).set(utf8);
        stringBytes += 4 + padded;
      }
      const trailer = out.reserve(TRAILER);
      trailer.setFloat64(0, stringBytes, true);
      trailer.setUint32(8, count, true);
      trailer.setUint32(12, strings.list.length, true);
      // The checksum covers every word before its own.
      trailer.setUint32(16, out.checksum(TRAILER - 16), true);
      trailer.setUint32(20, END, true);
      await out.end();
      await file.sync();
    } catch (error) {
      await file.close().catch(() => {});
      await rm(temporary, { force: true });
      throw error;
    }
    await file.close();
    await rename(temporary, this.path);
    if (this.legacyPath !== undefined) await rm(this.legacyPath, { force: true });
  }
}

function readIfThere(path: string): Uint8Array | undefined {
  try {
    return readFileSync(path);
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return undefined;
    throw error;
  }
}

/** Numbers the names and reasons in the order they first appear. */
class Strings {
  readonly list: string[] = [];
  private readonly ids = new Map<string, number>();

  id(text: string): number {
    let id = this.ids.get(text);
    if (id === undefined) {
      id = this.list.push(text) - 1;
      this.ids.set(text, id);
    }
    return id;
  }
}

/** Fills a megabyte at a time, hashing each word as it goes out. */
class ChunkWriter {
  private chunk = new DataView(new ArrayBuffer(CHUNK));
  private used = 0;
  private hash = HASH_SEED;
  private hashed = 0;
  private readonly full: Uint8Array[] = [];

  constructor(private readonly file: FileHandle) {}

  /** True once a chunk is filled: `drain()` then writes it out. */
  get filled(): boolean {
    return this.full.length > 0;
  }

  async drain(): Promise<void> {
    for (const bytes of this.full.splice(0)) {
      for (let written = 0; written < bytes.length;) {
        written += (await this.file.write(bytes, written, bytes.length - written)).bytesWritten;
      }
    }
  }

  /** `bytes` (a multiple of 4, at most CHUNK) to fill, in the current chunk. */
  reserve(bytes: number): DataView {
    if (this.used + bytes > CHUNK) this.seal();
    const view = new DataView(this.chunk.buffer, this.used, bytes);
    this.used += bytes;
    return view;
  }

  /** The checksum of everything reserved so far but the last `exceptLast` bytes. */
  checksum(exceptLast: number): number {
    this.hash = hashWords(new Uint32Array(this.chunk.buffer, this.hashed, (this.used - exceptLast - this.hashed) / 4), this.hash);
    this.hashed = this.used - exceptLast;
    return this.hash >>> 0;
  }

  async end(): Promise<void> {
    this.seal();
    await this.drain();
  }

  private seal(): void {
    if (this.hashed < this.used) {
      this.hash = hashWords(new Uint32Array(this.chunk.buffer, this.hashed, (this.used - this.hashed) / 4), this.hash);
    }
    this.full.push(new Uint8Array(this.chunk.buffer, 0, this.used));
    this.chunk = new DataView(new ArrayBuffer(CHUNK));
    this.used = 0;
    this.hashed = 0;
  }
}

const HASH_SEED = 0x811c9dc5;

/** A 32-bit checksum of words: every change to one word, and every swap of two, changes it. */
function hashWords(words: Uint32Array, seed: number): number {
  let h = seed;
  for (let i = 0; i < words.length; i++) {
    h = Math.imul(h ^ words[i], 0x01000193);
    h ^= h >>> 15;
  }
  return h;
}

function encode(at: DataView, entry: CopiedEntry, strings: Strings): void {
  const { ip, length } = entry.range;
  at.setFloat64(0, entry.createdAt, true);
  at.setFloat64(8, entry.expiresAt ?? Infinity, true);
  if (ip.family === 4) at.setUint32(16, ip.value, true);
  else for (let g = 0; g < 8; g++) at.setUint16(16 + g * 2, ip.groups[g], true);
  at.setUint8(32, KINDS.indexOf(entry.kind));
  at.setUint8(33, ip.family);
  at.setUint8(34, length);
  at.setUint16(36, strings.id(entry.node), true);
  at.setUint16(38, entry.check === null ? 0 : strings.id(entry.check) + 1, true);
  at.setUint32(40, entry.reason === null ? 0 : strings.id(entry.reason) + 1, true);
}

function decode(path: string, file: Uint8Array): SavedLists {
  const refuse = (why: string) => new Error(`the local copy of the lists ${path} is damaged (${why}), so it is not used`);
  // Words are read in place: a file read into a pooled buffer may not start on a word.
  const bytes = file.byteOffset % 4 === 0 ? file : file.slice();
  if (bytes.length < HEADER + TRAILER || bytes.length % 4 !== 0) throw refuse(`${bytes.length} bytes, which no copy has`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const magic = String.fromCharCode(...bytes.subarray(0, MAGIC.length));
  if (magic !== MAGIC) throw refuse(`it does not begin with ${MAGIC}`);
  const end = bytes.length - TRAILER;
  if (view.getUint32(end + 20, true) !== END) throw refuse("its trailer is missing: cut short?");
  const sum = hashWords(new Uint32Array(bytes.buffer, bytes.byteOffset, (end + 16) / 4), HASH_SEED) >>> 0;
  if (sum !== view.getUint32(end + 16, true)) throw refuse("its checksum does not match its contents");
  const stringBytes = view.getFloat64(end, true);
  const count = view.getUint32(end + 8, true);
  const stringCount = view.getUint32(end + 12, true);
  if (HEADER + count * RECORD + stringBytes !== end) {
    throw refuse(`its trailer counts ${count} entries and ${stringBytes} bytes of names, which do not fill it`);
  }
  const strings: string[] = [];
  const decoder = new TextDecoder();
  for (let at = HEADER + count * RECORD; strings.length < stringCount;) {
    const length = view.getUint32(at, true);
    strings.push(decoder.decode(bytes.subarray(at + 4, at + 4 + length)));
    at += 4 + ((length + 3) & ~3);
  }
  // Checked whole before the first entry is used: a copy is believed entirely or not at all.
  for (let i = 0; i < count; i++) {
    const at = HEADER + i * RECORD;
    const family = view.getUint8(at + 33), length = view.getUint8(at + 34);
    if (view.getUint8(at + 32) >= KINDS.length || (family !== 4 && family !== 6) || length > (family === 4 ? 32 : 128)) {
      throw refuse(`entry ${i} is no entry`);
    }
    if (
      view.getUint16(at + 36, true) >= stringCount || view.getUint16(at + 38, true) > stringCount ||
      view.getUint32(at + 40, true) > stringCount
    ) throw refuse(`entry ${i} names a string the copy does not hold`);
  }
  function* entries(): Generator<CopiedEntry> {
    for (let i = 0; i < count; i++) {
      const at = HEADER + i * RECORD;
      const family = view.getUint8(at + 33), length = view.getUint8(at + 34), kind = KINDS[view.getUint8(at + 32)];
      const ip: IP = family === 4
        ? { family: 4, value: view.getUint32(at + 16, true) }
        : { family: 6, groups: Array.from({ length: 8 }, (_, g) => view.getUint16(at + 16 + g * 2, true)) };
      const expiresAt = view.getFloat64(at + 8, true);
      const check = view.getUint16(at + 38, true), reason = view.getUint32(at + 40, true);
      yield {
        kind,
        range: { ip, length },
        createdAt: view.getFloat64(at, true),
        expiresAt: expiresAt === Infinity ? null : expiresAt,
        node: strings[view.getUint16(at + 36, true)],
        check: check === 0 ? null : strings[check - 1],
        reason: reason === 0 ? null : strings[reason - 1],
      };
    }
  }
  return { savedAt: view.getFloat64(8, true), count, entries: entries() };
}

/** The earlier format: a JSON header line, then one JSON entry per line (lines that are no entry skipped). */
function decodeLegacy(path: string, text: string): SavedLists {
  const [header, ...lines] = text.split("\n");
  let head: { format?: unknown; savedAt?: unknown } | undefined;
  try {
    head = JSON.parse(header);
  } catch {
    head = undefined;
  }
  if (head?.format !== "mxscreen-lists 1" || typeof head.savedAt !== "number") {
    throw new Error(
      `the local copy of the lists ${path} is damaged (its header ${
        JSON.stringify(header.slice(0, 80))
      } is not one this mxscreen writes), so it is not used`,
    );
  }
  const entries: CopiedEntry[] = [];
  for (const line of lines) {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      continue;
    }
    const e = value as Record<string, unknown> | null;
    const range = typeof e?.prefix === "string" ? parsePrefix(e.prefix) : null;
    if (
      e === null || range === null || !KINDS.includes(e.kind as ListKind) || typeof e.createdAt !== "number" || typeof e.node !== "string"
    ) continue;
    if (e.expiresAt !== null && typeof e.expiresAt !== "number") continue;
    const text = (v: unknown) => typeof v === "string" ? v : null;
    entries.push({
      kind: e.kind as ListKind,
      range,
      createdAt: e.createdAt,
      expiresAt: e.expiresAt as number | null,
      node: e.node,
      check: text(e.check),
      reason: text(e.reason),
    });
  }
  return { savedAt: head.savedAt, count: entries.length, entries };
}
