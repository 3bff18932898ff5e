/** A count over a sliding window that other nodes may add to: what a check reads and adds to. */
export interface WindowedCounter {
  /** Adds this node's `n` for `key` at `now`; returns the fleet's sum over the window, `n` included. */
  add(key: string, n: number, now: number): number;
  /** The fleet's sum for `key` over the window ending at `now`, as far as this node has heard. */
  sum(key: string, now: number): number;
}

/** A window is counted in this many slots: a count leaves the window at most one slot late. */
const SLOTS = 12;
const MIN_SLOT_MS = 1_000;
/** Bounded memory under a flood of distinct keys (networks, domains): the least recently counted go first. */
const MAX_KEYS = 100_000;

interface Slot {
  own: number;
  /** Each other node's total for this slot, as it last wrote it. */
  readonly others: Map<string, number>;
}

/** One node's own count for one slot, to be written to the database. */
export interface OwnCount {
  readonly key: string;
  readonly slot: number;
  readonly count: number;
}

/**
 * Counts per key in slots of a window, this node's own and the other nodes' apart, so that
 * the sum is the fleet's while each node writes only its own totals (an upsert per slot that
 * can be replayed). Sans-I/O: the time is passed in, the store reads and writes the rows.
 */
export class WindowedCounts implements WindowedCounter {
  readonly slotMs: number;
  private readonly keys = new Map<string, Map<number, Slot>>();
  /** Keys and slots whose own count changed since the last takeChanged(). */
  private readonly changed = new Map<string, Set<number>>();
  private forgotten = 0;

  constructor(readonly windowMs: number, private readonly maxKeys = MAX_KEYS) {
    this.slotMs = Math.max(MIN_SLOT_MS, Math.ceil(windowMs / SLOTS));
  }

  get size(): number {
    return this.keys.size;
  }

  /** Keys forgotten since start because more than `maxKeys` were counted at once. */
  get evicted(): number {
    return this.forgotten;
  }

  add(key: string, n: number, now: number): number {
    const slot = this.slotOf(now);
    const slots = this.touch(key);
    const counted = slots.get(slot) ?? { own: 0, others: new Map() };
    counted.own += n;
    slots.set(slot, counted);
    const changed = this.changed.get(key) ?? new Set();
    changed.add(slot);
    this.changed.set(key, changed);
    return this.sum(key, now);
  }

  sum(key: string, now: number): number {
    const slots = this.keys.get(key);
    if (slots === undefined) return 0;
    const oldest = this.oldestSlot(now);
    let total = 0;
    for (const [slot, counted] of slots) {
      if (slot < oldest) continue;
      total += counted.own;
      for (const count of counted.others.values()) total += count;
    }
    return total;
  }

  /** Another node's total for one slot, read from the database; one outside the window is of no use. */
  setOther(key: string, slot: number, node: string, count: number, now: number): void {
    if (slot < this.oldestSlot(now)) return;
    const slots = this.keys.get(key) ?? this.touch(key);
    const counted = slots.get(slot) ?? { own: 0, others: new Map() };
    counted.others.set(node, Math.max(count, counted.others.get(node) ?? 0));
    slots.set(slot, counted);
  }

  /** This node's totals that changed since the last call, for the database. */
  takeChanged(): OwnCount[] {
    const out: OwnCount[] = [];
    for (const [key, slots] of this.changed) {
      for (const slot of slots) {
        const own = this.keys.get(key)?.get(slot)?.own;
        if (own !== undefined) out.push({ key, slot, count: own });
      }
    }
    this.changed.clear();
    return out;
  }

  /** Forgets slots that left the window, and keys left with none. */
  sweep(now: number): void {
    const oldest = this.oldestSlot(now);
    for (const [key, slots] of this.keys) {
      for (const slot of slots.keys()) if (slot < oldest) slots.delete(slot);
      if (slots.size === 0) this.keys.delete(key);
    }
  }

  private slotOf(now: number): number {
    return Math.floor(now / this.slotMs) * this.slotMs;
  }

  /** The first slot still inside the window ending at `now`. */
  private oldestSlot(now: number): number {
    return this.slotOf(now - this.windowMs) + this.slotMs;
  }

  /** The key's slots, made the most recently used (a Map keeps insertion order). */
  private touch(key: string): Map<number, Slot> {
    const slots = this.keys.get(key) ?? new Map<number, Slot>();
    this.keys.delete(key);
    this.keys.set(key, slots);
    if (this.keys.size > this.maxKeys) {
      const oldest = this.keys.keys().next().value!;
      this.keys.delete(oldest);
      this.changed.delete(oldest);
      this.forgotten++;
    }
    return slots;
  }
}
