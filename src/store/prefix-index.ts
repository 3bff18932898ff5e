import { formatPrefix, type IP, type IPv6, mask, parsePrefix, type Prefix } from "../ip/address.ts";
import type { ListEntry, ListKind } from "./types.ts";

/** A change as the index applies it: what a node needs to screen, nothing it could read later. */
export interface IndexedChange {
  readonly kind: ListKind;
  readonly prefix: Prefix;
  readonly op: "set" | "remove";
  readonly createdAt: number;
  /** null: never expires. */
  readonly expiresAt: number | null;
  readonly node: string;
  readonly check: string | null;
  readonly reason: string | null;
}

const KIND_NUMBER: Record<ListKind, number> = { ban: 0, pass: 1, allow: 2 };
const KINDS: readonly ListKind[] = ["ban", "pass", "allow"];

// The meta word of a slot: the key's length, family and kind, a removal flag, an occupied
// bit (so an empty slot is 0), and the reason's number.
const V6 = 1 << 8;
const KIND_SHIFT = 9;
const REMOVED = 1 << 11;
const OCCUPIED = 1 << 12;
const KEY_META = 0x7ff;
const REASON_SHIFT = 13;
/**
 * Distinct reasons held in memory at most (at most 500 characters each: 33 MB at worst). Those
 * of the checks repeat on every entry and cost nothing each; free text beyond this many (a bulk
 * import, one reason a line) is left to the database, and the BANNED line leaves it out.
 */
const MAX_REASONS = 0xffff;

/** Slots in use at most this fraction of the table; linear probing stays short below it. */
const LOAD = 0.75;
const FIRST_CAPACITY = 1 << 10;
/**
 * IPv4 lengths up to this one each have a bitmap of which prefixes of that length have a slot
 * (2^length bits: 2 MB at /24), for the kinds with entries of that length.
 */
const BITMAP_MAX = 24;
/** Where a length has no bitmap (no entries): one array type in `present`, so its reads stay monomorphic. */
const NO_BITMAP = new Uint32Array(0);

function keyMeta(kind: number, prefix: Prefix): number {
  return prefix.length | (prefix.ip.family === 6 ? V6 : 0) | (kind << KIND_SHIFT);
}

/** The top `bits` bits of a 32-bit word, unsigned. */
function maskWord(word: number, bits: number): number {
  if (bits >= 32) return word >>> 0;
  if (bits <= 0) return 0;
  return (word & (~0 << (32 - bits))) >>> 0;
}

function hash(a: number, b: number, meta: number): number {
  let h = Math.imul(a ^ Math.imul(b, 0x9e3779b1) ^ Math.imul(meta, 0x27d4eb2f), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * Bans, passes and allow entries by IP prefix, for lookups that never wait on the network and
 * cost a few dozen bytes per entry at ten million of them: one open-addressing hash table in
 * typed arrays (linear probing, deletion by backward shift, so no tombstone slots), keyed by
 * (kind, family, length, the prefix's first 64 bits). A lookup probes once per prefix length in
 * use, longest first, until the most specific live entry is found. Each slot also holds the
 * version of the change in force (its creation time), removals included, so a change older
 * than the one applied is ignored whichever order they arrive in. IPv6 prefixes longer than a
 * /64 (host entries an operator adds by hand, rare) live in a map beside it.
 *
 * Evidence is not kept, nor reasons past MAX_REASONS distinct ones: whoever shows them reads
 * them from the database.
 */
export class ListIndex {
  private capacity = FIRST_CAPACITY;
  /**
   * 32 bytes per slot, one half of a cache line, so a probe touches one line: as words, key
   * word a, key word b, meta, node name id | (check id + 1) << 16; then as doubles (at slot * 4
   * + 2 and + 3), creation time and expiry (Infinity: never), in ms.
   */
  private words: Uint32Array;
  private times: Float64Array;
  private used = 0;
  /** Where the next sweep starts. */
  private sweepAt = 0;
  private readonly long = new Map<string, { meta: number; names: number; createdAt: number; expiresAt: number }>();
  /** Slots per (kind, family, length), to probe only the lengths in use. */
  private readonly perLength = new Int32Array(3 * 2 * 129);
  private readonly lengths: number[][] = Array.from({ length: 6 }, () => []);
  /** A bit per (kind, family) with any lengths in use, at kind * 2 + family. */
  private inUse = 0;
  /** Per kind and IPv4 length up to BITMAP_MAX: a bit per prefix that has a slot, while the length has any. */
  private readonly present: Uint32Array[] = new Array(3 * (BITMAP_MAX + 1)).fill(NO_BITMAP);
  private readonly inForce = [0, 0, 0];
  /** Node names and check ids, few and repeated on every entry, by number. */
  private readonly names: string[] = [];
  private readonly nameIds = new Map<string, number>();
  private readonly reasons: string[] = [];
  private readonly reasonIds = new Map<string, number>();
  /** What lookupAll answers, reused: one answer per kind, and the three together. */
  private readonly views = [0, 1, 2].map(() => new SlotEntry((slot) => this.entryAt(slot)));
  private readonly lists: { allow: FoundNow | undefined; ban: FoundNow | undefined; pass: FoundNow | undefined } = {
    allow: undefined,
    ban: undefined,
    pass: undefined,
  };

  /** `allocate`: where the table's and the bitmaps' memory comes from (huge pages, given by the runtime adapter). */
  constructor(private readonly allocate: (bytes: number) => Uint32Array = (bytes) => new Uint32Array(bytes / 4)) {
    [this.words, this.times] = this.slots(FIRST_CAPACITY);
  }

  /** Entries of one list in force (expired ones count until the next sweep). */
  size(kind: ListKind): number {
    return this.inForce[KIND_NUMBER[kind]];
  }

  /** Makes room for `entries` without growing on the way (a load of known size). */
  reserve(entries: number): void {
    let capacity = this.capacity;
    while (entries > capacity * LOAD) capacity *= 2;
    if (capacity !== this.capacity) this.rehash(capacity);
  }

  /**
   * Applies a change unless the one in force for its kind and prefix is newer; `force` applies it
   * anyway (this node's own writes, which are the newest it knows of). True when applied.
   */
  apply(change: IndexedChange, force = false): boolean {
    const kind = KIND_NUMBER[change.kind];
    const meta = (keyMeta(kind, change.prefix) | OCCUPIED | (change.op === "remove" ? REMOVED : 0) |
      (this.reasonId(change.reason) << REASON_SHIFT)) >>> 0;
    const names = this.nameId(change.node) | ((change.check === null ? 0 : this.nameId(change.check) + 1) << 16);
    const expiresAt = change.expiresAt ?? Infinity;
    const { ip, length } = change.prefix;
    if (ip.family === 6 && length > 64) {
      const key = `${change.kind} ${formatPrefix({ ip: mask(ip, length), length })}`;
      const old = this.long.get(key);
      if (old && !force && old.createdAt > change.createdAt) return false;
      if (old) this.forget(old.meta);
      else this.count(meta, 1);
      this.remember(meta);
      this.long.set(key, { meta, names, createdAt: change.createdAt, expiresAt });
      return true;
    }
    const [a, b] = keyWords(ip, length);
    let slot = this.find(a, b, meta & KEY_META);
    if (slot < 0) {
      if ((this.used + 1) > this.capacity * LOAD) this.rehash(this.capacity * 2);
      slot = this.emptySlotFor(a, b, meta & KEY_META);
      this.used++;
      this.count(meta, 1);
      this.mark(meta, a, true);
    } else {
      if (!force && this.times[slot * 4 + 2] > change.createdAt) return false;
      this.forget(this.words[slot * 8 + 2]);
    }
    this.remember(meta);
    const w = slot * 8;
    this.words[w] = a;
    this.words[w + 1] = b;
    this.words[w + 2] = meta;
    this.words[w + 3] = names;
    this.times[slot * 4 + 2] = change.createdAt;
    this.times[slot * 4 + 3] = expiresAt;
    return true;
  }

  /** The most specific entry of `kind` covering `ip` that has not expired at `now`. */
  lookup(kind: ListKind, ip: IP, now: number): ListEntry | undefined {
    const k = KIND_NUMBER[kind];
    if (ip.family === 4) {
      const slot = this.slotV4(k, ip.value, now);
      return slot < 0 ? undefined : this.entryAt(slot);
    }
    const g = ip.groups;
    return this.lookupV6(k, ip, ((g[0] << 16) | g[1]) >>> 0, ((g[2] << 16) | g[3]) >>> 0, now)?.keep();
  }

  /**
   * The three lists' entries for `ip` at once, its key words computed once: the lookup of every
   * connection. Nothing is allocated (the answer and what it holds are reused, and an entry's
   * fields are read from the table when they are read), so the answer holds only until the
   * next lookup or change: read it at once, `keep()` an entry to hold it longer.
   */
  lookupAll(ip: IP, now: number): Lists {
    const lists = this.lists;
    // A list with no entries of the address's family costs one test of a bit.
    const inUse = this.inUse;
    if (ip.family === 4) {
      const value = ip.value;
      lists.allow = (inUse & (1 << 4)) === 0 ? undefined : this.foundV4(2, value, now);
      lists.ban = (inUse & 1) === 0 ? undefined : this.foundV4(0, value, now);
      lists.pass = (inUse & (1 << 2)) === 0 ? undefined : this.foundV4(1, value, now);
      return lists;
    }
    const g = ip.groups;
    const high = ((g[0] << 16) | g[1]) >>> 0, low = ((g[2] << 16) | g[3]) >>> 0;
    lists.allow = (inUse & (1 << 5)) === 0 ? undefined : this.lookupV6(2, ip, high, low, now);
    lists.ban = (inUse & (1 << 1)) === 0 ? undefined : this.lookupV6(0, ip, high, low, now);
    lists.pass = (inUse & (1 << 3)) === 0 ? undefined : this.lookupV6(1, ip, high, low, now);
    return lists;
  }

  private foundV4(k: number, value: number, now: number): FoundNow | undefined {
    const slot = this.slotV4(k, value, now);
    return slot < 0 ? undefined : this.view(k, slot);
  }

  /** Kind `k`'s reused answer, pointed at `slot`. */
  private view(k: number, slot: number): SlotEntry {
    const view = this.views[k];
    view.slot = slot;
    return view;
  }

  /** The slot of the most specific live IPv4 entry of kind `k` covering `value`, or -1. */
  private slotV4(k: number, value: number, now: number): number {
    const lengths = this.lengths[k * 2];
    // Most probes of a short length miss: its bitmap (at most 2 MB, on a huge page) says so
    // without touching the table, a cache miss at millions of entries. The bitmaps are read
    // first, so that their reads and the table's overlap instead of following each other.
    let maybe = 0;
    for (let i = lengths.length - 1; i >= 0 && lengths[i] <= BITMAP_MAX; i--) {
      const length = lengths[i];
      const bit = length === 0 ? 0 : value >>> (32 - length);
      if ((this.present[k * (BITMAP_MAX + 1) + length][bit >>> 5] & (1 << (bit & 31))) !== 0) maybe |= 1 << length;
    }
    for (let i = 0; i < lengths.length; i++) {
      const length = lengths[i];
      if (length <= BITMAP_MAX && (maybe & (1 << length)) === 0) continue;
      const slot = this.liveSlot(maskWord(value, length), 0, length | (k << KIND_SHIFT), now);
      if (slot >= 0) return slot;
    }
    return -1;
  }

  private lookupV6(k: number, ip: IPv6, high: number, low: number, now: number): FoundNow | undefined {
    const lengths = this.lengths[k * 2 + 1];
    for (let i = 0; i < lengths.length; i++) {
      const length = lengths[i];
      if (length > 64) {
        const found = this.longEntry(k, ip, length, now);
        if (found) return found;
        continue;
      }
      const slot = this.liveSlot(maskWord(high, length), maskWord(low, length - 32), length | V6 | (k << KIND_SHIFT), now);
      if (slot >= 0) return this.view(k, slot);
    }
    return undefined;
  }

  private longEntry(k: number, ip: IPv6, length: number, now: number): FoundEntry | undefined {
    const found = this.long.get(`${KINDS[k]} ${formatPrefix({ ip: mask(ip, length), length })}`);
    if (found === undefined || (found.meta & REMOVED) || found.expiresAt <= now) return undefined;
    return this.entry(k, ip, length, found.meta, found.names, found.createdAt, found.expiresAt);
  }

  /** The slot of the key, if its entry is in force at `now` (not removed, not expired), or -1. */
  private liveSlot(a: number, b: number, key: number, now: number): number {
    const mask = this.capacity - 1;
    const words = this.words;
    for (let slot = hash(a, b, key) & mask;; slot = (slot + 1) & mask) {
      const meta = words[slot * 8 + 2];
      if (meta === 0) return -1;
      if ((meta & KEY_META) === key && words[slot * 8] === a && words[slot * 8 + 1] === b) {
        return (meta & REMOVED) === 0 && this.times[slot * 4 + 3] > now ? slot : -1;
      }
    }
  }

  /** The entry in `slot`, written out. */
  private entryAt(slot: number): FoundEntry {
    const meta = this.words[slot * 8 + 2];
    const k = (meta >>> KIND_SHIFT) & 3;
    const a = this.words[slot * 8], b = this.words[slot * 8 + 1];
    const ip: IP = meta & V6 ? { family: 6, groups: [a >>> 16, a & 0xffff, b >>> 16, b & 0xffff, 0, 0, 0, 0] } : { family: 4, value: a };
    return this.entry(k, ip, meta & 0xff, meta, this.words[slot * 8 + 3], this.times[slot * 4 + 2], this.times[slot * 4 + 3]);
  }

  /**
   * Every entry of `kind` in force at `now` (not removed, not expired): what the local copy of
   * the lists is written from, and what the admin side shows while the database is away. A walk
   * over the whole table, for those rare moments only.
   */
  *entries(kind: ListKind, now: number): Generator<HeldEntry> {
    const k = KIND_NUMBER[kind];
    for (let slot = 0; slot < this.capacity; slot++) {
      const meta = this.words[slot * 8 + 2];
      if (meta === 0 || (meta & REMOVED) || ((meta >>> KIND_SHIFT) & 3) !== k) continue;
      if (this.times[slot * 4 + 3] <= now) continue;
      yield this.entryAt(slot);
    }
    for (const [key, value] of this.long) {
      if (!key.startsWith(`${kind} `) || (value.meta & REMOVED) || value.expiresAt <= now) continue;
      const prefix = parsePrefix(key.slice(kind.length + 1))!;
      yield this.entry(k, prefix.ip, prefix.length, value.meta, value.names, value.createdAt, value.expiresAt);
    }
  }

  /**
   * Drops entries expired at `now`, and the versions of removals made before `removedBefore`
   * (by then no change older than them can still arrive), looking at `slots` slots of the table
   * from where the last sweep stopped (a whole table of ten million entries is half a second of
   * a thread that also answers clients); returns how many entries expired. An expired entry
   * not yet swept already stops applying: lookups compare its expiry.
   */
  sweep(now: number, removedBefore: number, slots = Infinity): number {
    let expired = 0;
    const gone = (meta: number, createdAt: number, expiresAt: number) => (meta & REMOVED) ? createdAt < removedBefore : expiresAt <= now;
    for (const [key, value] of this.long) {
      if (!gone(value.meta, value.createdAt, value.expiresAt)) continue;
      if (!(value.meta & REMOVED)) expired++;
      this.forget(value.meta);
      this.count(value.meta, -1);
      this.long.delete(key);
    }
    // A backward shift can move a later entry into the slot just emptied, or one from the start
    // of the table to its end: the slot is looked at again before moving on, and a wrapped
    // entry is looked at twice, which is harmless.
    let slot = this.sweepAt < this.capacity ? this.sweepAt : 0;
    for (let seen = 0; seen < Math.min(slots, this.capacity);) {
      const meta = this.words[slot * 8 + 2];
      if (meta !== 0 && gone(meta, this.times[slot * 4 + 2], this.times[slot * 4 + 3])) {
        if (!(meta & REMOVED)) expired++;
        this.forget(meta);
        this.mark(meta, this.words[slot * 8], false);
        this.count(meta, -1);
        this.removeSlot(slot);
        continue;
      }
      slot = (slot + 1) & (this.capacity - 1);
      seen++;
    }
    this.sweepAt = slot;
    return expired;
  }

  private entry(k: number, ip: IP, length: number, meta: number, names: number, createdAt: number, expiresAt: number): FoundEntry {
    const check = names >>> 16;
    const reason = meta >>> REASON_SHIFT;
    return new FoundEntry(
      KINDS[k],
      ip,
      length,
      createdAt,
      expiresAt === Infinity ? null : expiresAt,
      this.names[names & 0xffff],
      check === 0 ? null : this.names[check - 1],
      reason === 0 ? null : this.reasons[reason - 1],
    );
  }

  /** The reason's number plus one, 0 for none or one past MAX_REASONS. */
  private reasonId(reason: string | null): number {
    if (reason === null) return 0;
    let id = this.reasonIds.get(reason);
    if (id === undefined) {
      if (this.reasons.length >= MAX_REASONS) return 0;
      id = this.reasons.push(reason);
      this.reasonIds.set(reason, id);
    }
    return id;
  }

  private nameId(name: string): number {
    let id = this.nameIds.get(name);
    if (id === undefined) {
      id = this.names.length;
      if (id > 0xfffe) {
        throw new Error(`the list index holds names of at most 65,535 nodes and checks; ${JSON.stringify(name)} is one too many`);
      }
      this.names.push(name);
      this.nameIds.set(name, id);
    }
    return id;
  }

  private find(a: number, b: number, key: number): number {
    const mask = this.capacity - 1;
    const words = this.words;
    for (let slot = hash(a, b, key) & mask;; slot = (slot + 1) & mask) {
      const meta = words[slot * 8 + 2];
      if (meta === 0) return -1;
      if ((meta & KEY_META) === key && words[slot * 8] === a && words[slot * 8 + 1] === b) return slot;
    }
  }

  private emptySlotFor(a: number, b: number, key: number): number {
    const mask = this.capacity - 1;
    let slot = hash(a, b, key) & mask;
    while (this.words[slot * 8 + 2] !== 0) slot = (slot + 1) & mask;
    return slot;
  }

  /** Empties a slot and moves back the entries of its probe run that belong before it. */
  private removeSlot(hole: number): void {
    const mask = this.capacity - 1;
    const words = this.words;
    this.used--;
    for (let next = (hole + 1) & mask;; next = (next + 1) & mask) {
      const meta = words[next * 8 + 2];
      if (meta === 0) break;
      const home = hash(words[next * 8], words[next * 8 + 1], meta & KEY_META) & mask;
      // The entry may move to the hole if its home is not in (hole, next], cyclically.
      const stays = hole < next ? home > hole && home <= next : home > hole || home <= next;
      if (stays) continue;
      words.copyWithin(hole * 8, next * 8, next * 8 + 8);
      hole = next;
    }
    words.fill(0, hole * 8, hole * 8 + 8);
  }

  private rehash(capacity: number): void {
    const oldWords = this.words;
    this.capacity = capacity;
    [this.words, this.times] = this.slots(capacity);
    for (let slot = 0; slot < oldWords.length / 8; slot++) {
      const meta = oldWords[slot * 8 + 2];
      if (meta === 0) continue;
      const to = this.emptySlotFor(oldWords[slot * 8], oldWords[slot * 8 + 1], meta & KEY_META);
      this.words.set(oldWords.subarray(slot * 8, slot * 8 + 8), to * 8);
    }
  }

  /** Counts an entry (or a removal's version) under its length, so lookups probe that length. */
  private count(meta: number, delta: number): void {
    const kind = (meta >>> KIND_SHIFT) & 3;
    const family = meta & V6 ? 1 : 0;
    const at = (kind * 2 + family) * 129 + (meta & 0xff);
    const before = this.perLength[at];
    this.perLength[at] += delta;
    if ((before === 0) !== (this.perLength[at] === 0)) {
      const length = meta & 0xff;
      if (family === 0 && length <= BITMAP_MAX) {
        this.present[kind * (BITMAP_MAX + 1) + length] = before === 0 ? this.allocate(Math.max(4, 2 ** length / 8)) : NO_BITMAP;
      }
      const lengths: number[] = [];
      for (let length = 128; length >= 0; length--) if (this.perLength[(kind * 2 + family) * 129 + length] > 0) lengths.push(length);
      this.lengths[kind * 2 + family] = lengths;
      if (lengths.length > 0) this.inUse |= 1 << (kind * 2 + family);
      else this.inUse &= ~(1 << (kind * 2 + family));
    }
  }

  /** Sets or clears the bitmap bit of an IPv4 slot's prefix (key word `a`), for the lengths that have one. */
  private mark(meta: number, a: number, on: boolean): void {
    const length = meta & 0xff;
    if (meta & V6 || length > BITMAP_MAX) return;
    const bits = this.present[((meta >>> KIND_SHIFT) & 3) * (BITMAP_MAX + 1) + length];
    const bit = length === 0 ? 0 : a >>> (32 - length);
    if (on) bits[bit >>> 5] |= 1 << (bit & 31);
    else bits[bit >>> 5] &= ~(1 << (bit & 31));
  }

  /** Two views of one buffer of `capacity` slots of 32 bytes. */
  private slots(capacity: number): [Uint32Array, Float64Array] {
    const words = this.allocate(capacity * 32);
    return [words, new Float64Array(words.buffer, words.byteOffset, capacity * 4)];
  }

  private remember(meta: number): void {
    if (!(meta & REMOVED)) this.inForce[(meta >>> KIND_SHIFT) & 3]++;
  }

  private forget(meta: number): void {
    if (!(meta & REMOVED)) this.inForce[(meta >>> KIND_SHIFT) & 3]--;
  }
}

/** An entry as the index holds it, its prefix as numbers too (what the local copy keeps). */
export interface HeldEntry extends ListEntry {
  readonly range: Prefix;
}

/** An entry a lookup found, valid until the index's next lookup or change; `keep()` copies it for longer. */
export interface FoundNow extends ListEntry {
  keep(): ListEntry;
}

/** The three lists' answers for one address (lookupAll), as valid as each FoundNow. */
export interface Lists {
  readonly allow: FoundNow | undefined;
  readonly ban: FoundNow | undefined;
  readonly pass: FoundNow | undefined;
}

/**
 * A slot's entry read from the table on each read of a field: a lookup that hits only notes the
 * slot, so it allocates nothing and its work does not wait on the table's cache line (what lets
 * the processor start the next lookup's read meanwhile). Each field read writes the entry out
 * whole, so whoever reads more than a field or two, or holds it, takes `keep()` once.
 */
class SlotEntry implements FoundNow {
  slot = -1;
  constructor(private readonly read: (slot: number) => FoundEntry) {}

  keep(): FoundEntry {
    return this.read(this.slot);
  }

  get kind(): ListKind {
    return this.keep().kind;
  }

  get prefix(): string {
    return this.keep().prefix;
  }

  get createdAt(): number {
    return this.keep().createdAt;
  }

  get expiresAt(): number | null {
    return this.keep().expiresAt;
  }

  get node(): string {
    return this.keep().node;
  }

  get check(): string | null {
    return this.keep().check;
  }

  get reason(): string | null {
    return this.keep().reason;
  }

  toJSON(): ListEntry {
    return this.keep().toJSON();
  }
}

/** An entry written out; its prefix is written out only when someone reads it (a log line). */
class FoundEntry implements HeldEntry, FoundNow {
  constructor(
    readonly kind: ListKind,
    private readonly ip: IP,
    private readonly length: number,
    readonly createdAt: number,
    readonly expiresAt: number | null,
    readonly node: string,
    readonly check: string | null,
    readonly reason: string | null,
  ) {}

  keep(): FoundEntry {
    return this;
  }

  get prefix(): string {
    return formatPrefix(this.range);
  }

  get range(): Prefix {
    return { ip: mask(this.ip, this.length), length: this.length };
  }

  toJSON(): ListEntry {
    return {
      kind: this.kind,
      prefix: this.prefix,
      createdAt: this.createdAt,
      expiresAt: this.expiresAt,
      node: this.node,
      check: this.check,
      reason: this.reason,
    };
  }
}

/** The first 64 bits of a prefix, masked to its length, as two words. */
function keyWords(ip: IP, length: number): [number, number] {
  if (ip.family === 4) return [maskWord(ip.value, length), 0];
  const g = ip.groups;
  return [maskWord((g[0] << 16) | g[1], length), maskWord((g[2] << 16) | g[3], length - 32)];
}
