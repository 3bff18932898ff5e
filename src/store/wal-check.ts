import { existsSync, readFileSync } from "node:fs";

const HEADER = 32;
const FRAME_HEADER = 24;
const MAGIC_LE = 0x377f0682;
const MAGIC_BE = 0x377f0683;

export interface WalDamage {
  /** The first frame (from 1) whose checksum fails. */
  readonly frame: number;
  readonly frames: number;
  /** Committed transactions after the damage that SQLite would silently leave out. */
  readonly lostCommits: number;
}

/** SQLite's WAL checksum (sqlite.org/fileformat2.html 4.4), continued from `s`, over whole 8-byte words. */
function checksum(bytes: Uint8Array, s: [number, number], bigEndian: boolean): [number, number] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let [s0, s1] = s;
  for (let i = 0; i + 8 <= bytes.length; i += 8) {
    s0 = (s0 + view.getUint32(i, !bigEndian) + s1) >>> 0;
    s1 = (s1 + view.getUint32(i + 4, !bigEndian) + s0) >>> 0;
  }
  return [s0, s1];
}

/**
 * Reads a database's write-ahead log the way SQLite will, and finds damage SQLite would not
 * report: at the first frame whose checksum fails it stops reading, and every transaction
 * committed after that frame is left out without a word (bans lost). A bad frame in the last,
 * uncommitted transaction is what a crash leaves and is no damage; neither are frames of an
 * older generation (other salts), which a restarted log leaves behind it.
 */
export function findWalDamage(walPath: string): WalDamage | undefined {
  if (!existsSync(walPath)) return undefined;
  const wal = readFileSync(walPath);
  if (wal.length < HEADER) return undefined;
  const view = new DataView(wal.buffer, wal.byteOffset, wal.byteLength);
  const magic = view.getUint32(0);
  const pageSize = view.getUint32(8);
  const frameSize = FRAME_HEADER + pageSize;
  const frames = Math.floor((wal.length - HEADER) / frameSize);
  if ((magic !== MAGIC_LE && magic !== MAGIC_BE) || pageSize < 512 || (pageSize & (pageSize - 1)) !== 0) {
    return frames > 0 ? { frame: 0, frames, lostCommits: frames } : undefined;
  }
  const bigEndian = magic === MAGIC_BE;
  const stored = (at: number): [number, number] => [view.getUint32(at), view.getUint32(at + 4)];
  const same = (a: [number, number], b: [number, number]) => a[0] === b[0] && a[1] === b[1];
  let chain = stored(24);
  if (!same(checksum(wal.subarray(0, 24), [0, 0], bigEndian), chain)) {
    return frames > 0 ? { frame: 0, frames, lostCommits: frames } : undefined;
  }
  const salts = [view.getUint32(16), view.getUint32(20)];
  let damaged: number | undefined;
  let lostCommits = 0;
  for (let i = 0; i < frames; i++) {
    const at = HEADER + i * frameSize;
    if (view.getUint32(at + 8) !== salts[0] || view.getUint32(at + 12) !== salts[1]) break;
    const expected = stored(at + 16);
    const computed = checksum(
      wal.subarray(at + FRAME_HEADER, at + frameSize),
      checksum(wal.subarray(at, at + 8), chain, bigEndian),
      bigEndian,
    );
    const good = same(computed, expected);
    // Past the damage, frames are checked against the checksums stored before them, as they were written.
    chain = expected;
    if (!good) {
      damaged ??= i + 1;
      continue;
    }
    if (damaged !== undefined && view.getUint32(at + 4) !== 0) lostCommits++;
  }
  return damaged !== undefined && lostCommits > 0 ? { frame: damaged, frames, lostCommits } : undefined;
}
