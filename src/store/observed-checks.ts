import { type Kysely, sql } from "kysely";
import { type CheckEstimate, estimate, judge } from "./observe-estimate.ts";
import type { Database } from "./types.ts";

export interface ObserveSettings {
  /** MXSCREEN_OBSERVE_WINDOW: hits this recent are estimated (those older than the retry window). */
  readonly windowMs: number;
  /** MXSCREEN_OBSERVE_RETRY_WINDOW: a client given a 4xx that delivered nothing within this is counted a bot. */
  readonly retryWindowMs: number;
  /** MXSCREEN_DNSWL_THRESHOLD: a session scored at or below it was DNSWL-listed. */
  readonly dnswlThreshold: number;
  /** What each check does on the asking node now: a check already switched to `enforce` shows as such. */
  readonly actions?: Readonly<Record<string, string>>;
}

/** The estimates, each with the window it covers. */
export interface ObservedChecks {
  readonly windowMs: number;
  readonly retryWindowMs: number;
  readonly since: number;
  /**
   * Hits after this (one retry window ago) are left out: a client hit since has had no time to
   * come back, and the newest hits, read first, would all be unknown.
   */
  readonly until: number;
  /** Hits read per check, newest first: the cost of a question is bounded by this, not by the events table. */
  readonly sampleHits: number;
  readonly checks: readonly ObservedCheck[];
}

/** A check's estimate, and what the check does on the asking node now (null: one its configuration does not know). */
export type ObservedCheck = CheckEstimate & { readonly action: string | null };

/** Enough clients for a rate to within a few percent, and a question of tens of milliseconds at any table size (bench/observe.ts). */
export const SAMPLE_HITS = 1_000;

/**
 * Per check with hits in `ignore` or `observe` in the window (up to one retry window ago): its
 * clients, what each did next (on any node), and the estimated false-positive rate of enforcing
 * it. Every step is an index probe (migrations/0010_observe.sql): the checks are found by
 * skipping through the index of observed hits, each check's newest hits are read from it, and
 * each client's evidence is one probe per partial index.
 */
export async function observedChecks(
  db: Kysely<Database>,
  now: number,
  settings: ObserveSettings,
  sampleHits = SAMPLE_HITS,
): Promise<ObservedChecks> {
  const since = now - settings.windowMs;
  const until = now - settings.retryWindowMs;
  const found = await sql<{ id: string | null }>`
    WITH RECURSIVE ids(id) AS (
      SELECT min(check_id) FROM events WHERE action IN ('ignore', 'observe')
      UNION ALL
      SELECT (SELECT min(check_id) FROM events WHERE action IN ('ignore', 'observe') AND check_id > ids.id) FROM ids WHERE ids.id IS NOT NULL
    )
    SELECT id FROM ids WHERE id IS NOT NULL`.execute(db);
  // One question per check, all at once: over sqld each is a round trip.
  const perCheck = await Promise.all(
    found.rows.map(async ({ id }) => ({ id: id!, rows: await clientsOf(db, id!, since, until, settings, sampleHits) })),
  );
  const checks: ObservedCheck[] = [];
  for (const { id, rows } of perCheck) {
    if (rows.length === 0) continue;
    const hits = rows.reduce((sum, row) => sum + Number(row.hits), 0);
    const clients = rows.map((row) => ({
      hits: Number(row.hits),
      judgement: judge(
        {
          dnswl: Boolean(row.dnswl),
          convicted: Boolean(row.convicted),
          tempfailAt: row.tempfail_at === null ? null : Number(row.tempfail_at),
          deliveredAfterTempfail: Boolean(row.retried),
          passedAfter: Boolean(row.passed),
        },
        now,
        settings.retryWindowMs,
      ),
    }));
    checks.push({ ...estimate(id, clients, hits >= sampleHits), action: settings.actions?.[id] ?? null });
  }
  return { windowMs: settings.windowMs, retryWindowMs: settings.retryWindowMs, since, until, sampleHits, checks };
}

interface ClientRow {
  client_ip: string;
  hits: number;
  dnswl: number;
  convicted: number;
  tempfail_at: number | null;
  retried: number;
  passed: number;
}

/**
 * Each WHERE below repeats its partial index's condition word for word: SQLite uses a partial
 * index only for a query whose terms include the index's own.
 */
function clientsOf(
  db: Kysely<Database>,
  check: string,
  since: number,
  until: number,
  settings: ObserveSettings,
  sampleHits: number,
): Promise<ClientRow[]> {
  return sql<ClientRow>`
    WITH hit AS (
      SELECT client_ip, at FROM events INDEXED BY events_observed
      WHERE check_id = ${check} AND action IN ('ignore', 'observe') AND at >= ${since} AND at <= ${until}
      ORDER BY at DESC LIMIT ${sampleHits}
    ), hit_client AS (
      SELECT client_ip, min(at) AS first_at, count(*) AS hits FROM hit GROUP BY client_ip
    ), evidence AS (
      SELECT h.client_ip, h.hits,
        EXISTS (SELECT 1 FROM events e INDEXED BY events_dnswl WHERE e.client_ip = h.client_ip AND json_extract(e.evidence, '$.dnsbl_score') < 0
          AND e.at >= ${since} AND json_extract(e.evidence, '$.dnsbl_score') <= ${settings.dnswlThreshold}) AS dnswl,
        EXISTS (SELECT 1 FROM events e INDEXED BY events_convicted WHERE e.client_ip = h.client_ip AND (e.action = 'ban' OR e.check_id = 'dnsbl')
          AND e.at >= ${since} AND e.check_id <> ${check}) AS convicted,
        (SELECT min(e.at) FROM events e INDEXED BY events_tempfailed WHERE e.client_ip = h.client_ip AND json_extract(e.evidence, '$.tempfails') > 0
          AND e.at >= h.first_at) AS tempfail_at,
        EXISTS (SELECT 1 FROM events e INDEXED BY events_passed WHERE e.client_ip = h.client_ip AND e.event = 'PASS NEW' AND e.at > h.first_at) AS passed
      FROM hit_client h
    )
    SELECT v.*,
      v.tempfail_at IS NOT NULL AND EXISTS (SELECT 1 FROM events e INDEXED BY events_delivered WHERE e.client_ip = v.client_ip
        AND json_extract(e.evidence, '$.messages') > 0 AND e.at > v.tempfail_at) AS retried
    FROM evidence v`.execute(db).then((result) => result.rows);
}
