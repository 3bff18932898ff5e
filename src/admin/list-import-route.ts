import type { Context, Hono } from "hono";
import { readDecisions } from "../store/decision-feed.ts";
import { readListFile } from "../store/list-file.ts";
import type { ListFileLine } from "../store/list-file.ts";
import { ImportError, importList, removeListed } from "../store/list-import.ts";
import type { Store } from "../store/store.ts";

/** How long the import waits for this node's own queued writes first, so "present" counts them. */
const READ_WAIT_MS = 1_000;
/** How long the removals of a feed may wait in the queue before the answer says they are queued. */
const WRITE_WAIT_MS = 5_000;

/**
 * `POST /api/bans/import` and `/api/allow/import`: the CLI's `import` for automation. A
 * `text/plain` body is a list file (the CLI's format, Postfix cidr lines included), with `ttl`,
 * `reason`, `force` and `line` (the number of its first line) as query parameters; a JSON body
 * is an entry list or a CrowdSec-style decision feed (src/store/decision-feed.ts), with `ttl`,
 * `reason`, `force` in the object or the query.
 */
export function importRoute<E extends { Bindings: { address: string } }>(
  app: Hono<E>,
  store: Store,
  kind: "ban" | "allow",
  path: string,
  banTtlMs: number,
): void {
  app.post(`${path}/import`, async (c: Context<E>) => {
    const type = (c.req.header("content-type") ?? "text/plain").toLowerCase();
    const query = { ttl: c.req.query("ttl"), reason: c.req.query("reason"), force: c.req.query("force") };
    let lines: Iterable<ListFileLine>;
    let removals: ListFileLine[] = [];
    let settings: Record<string, unknown> = query;
    if (type.includes("application/json")) {
      let body: unknown;
      try {
        body = await c.req.json();
      } catch {
        return c.json({ error: "body: not valid JSON" }, 400);
      }
      const read = readDecisions(body);
      if ("error" in read) return c.json({ error: read.error }, 400);
      lines = read.add;
      removals = read.remove;
      if (typeof body === "object" && body !== null && !Array.isArray(body)) settings = { ...query, ...body };
    } else if (type.startsWith("text/plain")) {
      const first = Number(c.req.query("line") ?? "1");
      if (!Number.isSafeInteger(first) || first < 1) return c.json({ error: "line: the number of the body's first line, from 1" }, 400);
      lines = readListFile(await c.req.text(), first);
    } else {
      return c.json({ error: `content-type ${type}: send text/plain (a list file) or application/json (entries or decisions)` }, 415);
    }
    const force = settings.force === true || settings.force === "true";
    for (const [name, value] of [["ttl", settings.ttl], ["reason", settings.reason]] as const) {
      if (value !== undefined && typeof value !== "string") return c.json({ error: `${name}: text expected` }, 400);
    }
    await store.flush(READ_WAIT_MS);
    try {
      const report = await importList(store, lines, {
        kind,
        ttl: settings.ttl as string | undefined,
        reason: settings.reason as string | undefined,
        force,
        confirm: 'force=true (a query parameter, or "force": true in a JSON body)',
        defaultTtlMs: { ban: banTtlMs, allow: null },
      });
      const removed = await removeListed(store, kind, removals, "removed by a decision feed");
      const written = await store.flush(WRITE_WAIT_MS);
      return c.json({
        ...report,
        removed: removed.removed,
        absent: removed.absent,
        refused: [...report.refused, ...removed.refused],
        refusedCount: report.refusedCount + removed.refused.length,
        written,
      });
    } catch (error) {
      if (!(error instanceof ImportError)) throw error;
      return c.json({
        error: `the store did not take the import: ${error.message}; lines up to ${error.report.lastLine} are in force`,
        ...error.report,
      }, 503);
    }
  });
}
