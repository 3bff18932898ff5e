import type { Kysely } from "kysely";
import { formatIP, formatPrefix, type IP, mask, maxLength } from "../ip/address.ts";
import type { Database } from "./types.ts";

export interface Explanation {
  readonly ip: string;
  /**
   * The list changes (ban, pass, allow) whose prefix covers the address, oldest first: the ones
   * in force, and those the change log still holds (it is trimmed once every node has read it).
   */
  readonly lists: {
    readonly at: number;
    readonly kind: string;
    readonly prefix: string;
    readonly op: string;
    readonly expiresAt: number | null;
    readonly node: string;
    readonly check: string | null;
    readonly reason: string | null;
    readonly evidence: unknown;
  }[];
  /** Every verdict recorded about the address, newest first. */
  readonly events: {
    readonly at: number;
    readonly node: string;
    readonly port: number;
    readonly event: string;
    readonly check: string | null;
    readonly action: string;
    readonly evidence: unknown;
  }[];
}

function parseJson(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Why an address is treated as it is: what it sent, when, which check and node decided what. */
export async function explain(db: Kysely<Database>, ip: IP, limit = 200): Promise<Explanation> {
  const address = formatIP(ip);
  // Every prefix that can cover the address, so that the (kind, prefix) index answers.
  const covering = Array.from({ length: maxLength(ip) + 1 }, (_, length) => formatPrefix({ ip: mask(ip, length), length }));
  const logged = await db.selectFrom("list_changes").selectAll().where("prefix", "in", covering).execute();
  const inForce = await db.selectFrom("lists").selectAll().where("prefix", "in", covering).execute();
  const bySeq = new Map([...inForce, ...logged].map((c) => [c.seq, c]));
  const lists = [...bySeq.values()].sort((a, b) => a.seq - b.seq)
    .map((c) => ({
      at: c.created_at,
      kind: c.kind,
      prefix: c.prefix,
      op: c.op,
      expiresAt: c.expires_at,
      node: c.node,
      check: c.check_id,
      reason: c.reason,
      evidence: parseJson(c.evidence),
    }));
  const events = (await db.selectFrom("events").selectAll().where("client_ip", "=", address).orderBy("at", "desc").limit(limit).execute())
    .map((e) => ({
      at: e.at,
      node: e.node,
      port: e.client_port,
      event: e.event,
      check: e.check_id,
      action: e.action,
      evidence: parseJson(e.evidence),
    }));
  return { ip: address, lists, events };
}
