import { type Kysely, sql } from "kysely";
import { type ObservedChecks, observedChecks, type ObserveSettings } from "./observed-checks.ts";
import type { Database } from "./types.ts";

export interface FleetStats {
  /** Entries in force, by list. */
  readonly lists: { readonly ban: number; readonly pass: number; readonly allow: number };
  /** Verdicts recorded by every node in the window, by event tag. */
  readonly events: Record<string, number>;
  readonly topOffenders: { readonly ip: string; readonly events: number; readonly last: number; readonly lastEvent: string }[];
  readonly recent: { readonly at: number; readonly node: string; readonly ip: string; readonly event: string; readonly action: string }[];
  readonly nodes: { readonly name: string; readonly runtime: string; readonly listen: string; readonly lastSeen: number }[];
  /** What enforcing each check now in `ignore` or `observe` would cost; null: not asked for, or the database is away. */
  readonly observed: ObservedChecks | null;
}

/** The fleet's numbers over the last `windowMs`, from the shared database; with `observe`, the estimates over its own window. */
export async function fleetStats(db: Kysely<Database>, now: number, observe?: ObserveSettings, windowMs = 3_600_000): Promise<FleetStats> {
  const since = now - windowMs;
  const inForce = await sql<{ kind: "ban" | "pass" | "allow"; n: number }>`
    SELECT kind, COUNT(*) AS n FROM lists
    WHERE op = 'set' AND (expires_at IS NULL OR expires_at > ${now})
    GROUP BY kind`.execute(db);
  const lists = { ban: 0, pass: 0, allow: 0 };
  for (const row of inForce.rows) lists[row.kind] = Number(row.n);
  const byEvent = await db.selectFrom("events").select(["event", (eb) => eb.fn.countAll<number>().as("n")])
    .where("at", ">=", since).groupBy("event").execute();
  const offenders = await db.selectFrom("events")
    .select(["client_ip", (eb) => eb.fn.countAll<number>().as("n"), (eb) => eb.fn.max("at").as("last")])
    .where("at", ">=", since).where("event", "not in", ["PASS NEW", "PASS OLD", "ALLOWED", "HANGUP", "SHUTDOWN"])
    .groupBy("client_ip").orderBy("n", "desc").limit(10).execute();
  const lastEvents = new Map<string, string>();
  for (const o of offenders) {
    const last = await db.selectFrom("events").select("event").where("client_ip", "=", o.client_ip).orderBy("at", "desc").limit(1)
      .executeTakeFirst();
    lastEvents.set(o.client_ip, last?.event ?? "");
  }
  const recent = await db.selectFrom("events").select(["at", "node", "client_ip", "event", "action"]).orderBy("at", "desc").limit(25)
    .execute();
  const nodes = await db.selectFrom("nodes").selectAll().orderBy("name").execute();
  return {
    lists,
    events: Object.fromEntries(byEvent.map((r) => [r.event, Number(r.n)])),
    topOffenders: offenders.map((o) => ({
      ip: o.client_ip,
      events: Number(o.n),
      last: Number(o.last),
      lastEvent: lastEvents.get(o.client_ip)!,
    })),
    recent: recent.map((r) => ({ at: r.at, node: r.node, ip: r.client_ip, event: r.event, action: r.action })),
    nodes: nodes.map((n) => ({ name: n.name, runtime: n.runtime, listen: n.listen, lastSeen: n.last_seen })),
    observed: observe === undefined ? null : await observedChecks(db, now, observe),
  };
}
