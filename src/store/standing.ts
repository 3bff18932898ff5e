import { contains, formatPrefix, type IP, type Prefix } from "../ip/address.ts";
import type { Store } from "./store.ts";
import type { Standing } from "./types.ts";

/** Shared: most connections are new, and each one held costs memory. */
const NEW: Standing = { kind: "new" };

/** What the lists say about a client now: an allow entry always wins over a ban, a ban over a pass. */
export function standing(allow: readonly Prefix[], store: Store, ip: IP, now: number): Standing {
  const configured = allow.find((prefix) => contains(prefix, ip));
  if (configured) return { kind: "allowed", source: `MXSCREEN_ALLOW ${formatPrefix(configured)}` };
  const lists = store.lookup(ip, now);
  if (lists.allow) return { kind: "allowed", source: lists.allow.prefix };
  if (lists.ban) return { kind: "banned", entry: lists.ban };
  if (lists.pass) return { kind: "passed", entry: lists.pass };
  return NEW;
}
