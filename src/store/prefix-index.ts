import type { IP, Prefix } from "../ip/address.ts";

interface Expiring {
  readonly expiresAt: number | null;
}

/** IPv6 prefixes as nested maps of 32-bit words: a /64 is two probes, no strings, no allocation. */
type Words<T> = Map<number, Words<T> | T>;

/**
 * The top `bits` bits of a 32-bit word, as a signed 32-bit integer: V8 keeps those unboxed
 * (an unsigned one above 2^31 is a heap number, allocated and hashed on every probe).
 */
function maskWord(word: number, bits: number): number {
  if (bits >= 32) return word | 0;
  if (bits <= 0) return 0;
  return word & (~0 << (32 - bits));
}

function v6Word(groups: readonly number[], i: number): number {
  return (groups[2 * i] << 16) | groups[2 * i + 1];
}

/**
 * Values by IP prefix, looked up by address without touching the network: one map per prefix
 * length in use, probed from the longest length down, so a lookup costs one masked probe
 * per distinct length until the most specific live entry is found.
 */
export class PrefixIndex<T extends Expiring> {
  private readonly v4 = new Map<number, Map<number, T>>();
  private readonly v6 = new Map<number, Words<T>>();
  private v4Lengths: number[] = [];
  private v6Lengths: number[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  set(prefix: Prefix, value: T): void {
    const { ip, length } = prefix;
    if (ip.family === 4) {
      let map = this.v4.get(length);
      if (!map) {
        this.v4.set(length, map = new Map());
        this.v4Lengths = [...this.v4.keys()].sort((a, b) => b - a);
      }
      const key = maskWord(ip.value, length);
      if (!map.has(key)) this.count++;
      map.set(key, value);
      return;
    }
    let root = this.v6.get(length);
    if (!root) {
      this.v6.set(length, root = new Map());
      this.v6Lengths = [...this.v6.keys()].sort((a, b) => b - a);
    }
    const depth = Math.max(1, Math.ceil(length / 32));
    let node = root;
    for (let i = 0; i < depth - 1; i++) {
      const key = v6Word(ip.groups, i);
      let child = node.get(key) as Words<T> | undefined;
      if (!child) node.set(key, child = new Map());
      node = child;
    }
    const last = maskWord(v6Word(ip.groups, depth - 1), length - 32 * (depth - 1));
    if (!node.has(last)) this.count++;
    node.set(last, value);
  }

  delete(prefix: Prefix): void {
    const { ip, length } = prefix;
    if (ip.family === 4) {
      if (this.v4.get(length)?.delete(maskWord(ip.value, length))) this.count--;
      return;
    }
    const depth = Math.max(1, Math.ceil(length / 32));
    let node = this.v6.get(length);
    for (let i = 0; node && i < depth - 1; i++) node = node.get(v6Word(ip.groups, i)) as Words<T> | undefined;
    if (node?.delete(maskWord(v6Word(ip.groups, depth - 1), length - 32 * (depth - 1)))) this.count--;
  }

  /** The most specific entry covering `ip` that has not expired at `now`. */
  lookup(ip: IP, now: number): T | undefined {
    if (ip.family === 4) {
      for (const length of this.v4Lengths) {
        const value = this.v4.get(length)!.get(maskWord(ip.value, length));
        if (value !== undefined && (value.expiresAt === null || value.expiresAt > now)) return value;
      }
      return undefined;
    }
    const g = ip.groups;
    for (const length of this.v6Lengths) {
      const depth = Math.max(1, Math.ceil(length / 32));
      let node: Words<T> | undefined = this.v6.get(length)!;
      for (let i = 0; node !== undefined && i < depth - 1; i++) node = node.get((g[2 * i] << 16) | g[2 * i + 1]) as Words<T> | undefined;
      if (node === undefined) continue;
      const value = node.get(maskWord((g[2 * depth - 2] << 16) | g[2 * depth - 1], length - 32 * (depth - 1))) as T | undefined;
      if (value !== undefined && (value.expiresAt === null || value.expiresAt > now)) return value;
    }
    return undefined;
  }

  /** Every entry held, expired or not (the local copy of the lists is written from them). */
  *values(): Generator<T> {
    const walk = function* (node: Words<T>, depth: number): Generator<T> {
      for (const child of node.values()) {
        if (depth > 1) yield* walk(child as Words<T>, depth - 1);
        else yield child as T;
      }
    };
    for (const map of this.v4.values()) yield* map.values();
    for (const [length, root] of this.v6) yield* walk(root, Math.max(1, Math.ceil(length / 32)));
  }

  /** Drops entries expired at `now`; returns how many. */
  sweep(now: number): number {
    let removed = 0;
    const expired = (value: T) => value.expiresAt !== null && value.expiresAt <= now;
    const sweepWords = (node: Words<T>, depth: number) => {
      for (const [key, child] of node) {
        if (depth > 1) sweepWords(child as Words<T>, depth - 1);
        else if (expired(child as T)) {
          node.delete(key);
          removed++;
        }
      }
    };
    for (const map of this.v4.values()) {
      for (const [key, value] of map) {
        if (expired(value)) {
          map.delete(key);
          removed++;
        }
      }
    }
    for (const [length, root] of this.v6) sweepWords(root, Math.max(1, Math.ceil(length / 32)));
    this.count -= removed;
    return removed;
  }
}
