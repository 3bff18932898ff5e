import { type IP, type IPv4, type IPv6, mask, type Prefix } from "../ip/address.ts";

interface Expiring {
  readonly expiresAt: number | null;
}

/**
 * Values by IP prefix, looked up by address without touching the network: one map per
 * prefix length in use, so a lookup costs one masked map probe per distinct length.
 */
export class PrefixIndex<T extends Expiring> {
  private readonly v4 = new Map<number, Map<number, T>>();
  private readonly v6 = new Map<number, Map<string, T>>();

  get size(): number {
    let n = 0;
    for (const m of this.v4.values()) n += m.size;
    for (const m of this.v6.values()) n += m.size;
    return n;
  }

  set(prefix: Prefix, value: T): void {
    if (prefix.ip.family === 4) {
      this.lengthMap(this.v4, prefix.length).set(prefix.ip.value, value);
    } else {
      this.lengthMap(this.v6, prefix.length).set(v6Key(prefix.ip.groups, prefix.length), value);
    }
  }

  delete(prefix: Prefix): void {
    if (prefix.ip.family === 4) this.v4.get(prefix.length)?.delete(prefix.ip.value);
    else this.v6.get(prefix.length)?.delete(v6Key(prefix.ip.groups, prefix.length));
  }

  /** The most specific entry covering `ip` that has not expired at `now`. */
  lookup(ip: IP, now: number): T | undefined {
    let best: T | undefined;
    let bestLength = -1;
    if (ip.family === 4) {
      for (const [length, map] of this.v4) {
        if (length <= bestLength) continue;
        const value = map.get((mask(ip, length) as IPv4).value);
        if (value !== undefined && (value.expiresAt === null || value.expiresAt > now)) {
          best = value;
          bestLength = length;
        }
      }
      return best;
    }
    for (const [length, map] of this.v6) {
      if (length <= bestLength) continue;
      const value = map.get(v6Key(ip.groups, length));
      if (value !== undefined && (value.expiresAt === null || value.expiresAt > now)) {
        best = value;
        bestLength = length;
      }
    }
    return best;
  }

  /** Drops entries expired at `now`; returns how many. */
  sweep(now: number): number {
    let removed = 0;
    for (const maps of [this.v4, this.v6] as Map<number, Map<unknown, T>>[]) {
      for (const map of maps.values()) {
        for (const [key, value] of map) {
          if (value.expiresAt !== null && value.expiresAt <= now) {
            map.delete(key);
            removed++;
          }
        }
      }
    }
    return removed;
  }

  private lengthMap<K>(maps: Map<number, Map<K, T>>, length: number): Map<K, T> {
    let map = maps.get(length);
    if (!map) maps.set(length, map = new Map());
    return map;
  }
}

function v6Key(groups: readonly number[], length: number): string {
  const masked = mask({ family: 6, groups }, length) as IPv6;
  return masked.groups.slice(0, Math.ceil(length / 16)).join(":");
}
