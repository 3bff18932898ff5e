import { contains, formatPrefix, type IP, type Prefix } from "../ip/address.ts";
import type { Store } from "./store.ts";
import type { Standing } from "./types.ts";

/** Shared: most connections are new, and each one held costs memory. */
const NEW: Standing = { kind: "new" };

/**
 * How long each test a pass stands for holds, from the pass's creation (when the client waited
 * out the greeting and its session began): the greet test's (MXSCREEN_PASS_TTL) and the deep
 * protocol tests' (MXSCREEN_PROTOCOL_PASS_TTL). The entry lasts as long as the longer of them.
 */
export interface PassTtls {
  readonly greetMs: number;
  readonly protocolMs: number;
}

/**
 * What the lists say about a client now: an allow entry always wins over a ban, a ban over a
 * pass. A pass whose greet test has expired but whose protocol tests hold leaves the client
 * new to the greet wait, not to the tests meant for clients never seen before.
 */
export function standing(allow: readonly Prefix[], store: Store, ip: IP, now: number, ttls: PassTtls): Standing {
  const configured = allow.find((prefix) => contains(prefix, ip));
  if (configured) return { kind: "allowed", source: `MXSCREEN_ALLOW ${formatPrefix(configured)}` };
  const lists = store.lookup(ip, now);
  if (lists.allow) return { kind: "allowed", source: lists.allow.prefix };
  if (lists.ban) return { kind: "banned", entry: lists.ban.keep() };
  if (lists.pass === undefined) return NEW;
  const pass = lists.pass.keep();
  if (pass.createdAt + ttls.greetMs > now) return { kind: "passed", entry: pass };
  if (pass.createdAt + ttls.protocolMs > now) return { kind: "new", protocolPass: pass };
  return NEW;
}
