import { createClient } from "@libsql/client";

/**
 * `count` bans of 10.x.y.z written straight to the database at `url` in one transaction (what
 * an import on another node leaves), then one of `last`: once a node enforces `last`, it has
 * the whole change.
 */
export async function importBans(url: string, count: number, last: string): Promise<void> {
  const primary = createClient({ url });
  const statements = [];
  for (let from = 0; from < count; from += 20_000) {
    statements.push(`WITH RECURSIVE n(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM n WHERE i < ${Math.min(count, from + 20_000) - 1})
      INSERT INTO list_changes (kind, prefix, op, created_at, expires_at, node, check_id, reason, evidence)
      SELECT 'ban', printf('10.%d.%d.%d/32', (i >> 16) & 255, (i >> 8) & 255, i & 255), 'set', ${Date.now()}, NULL, 'importer', NULL, 'feed', NULL FROM n`);
  }
  statements.push(`INSERT INTO list_changes (kind, prefix, op, created_at, expires_at, node, check_id, reason, evidence)
    VALUES ('ban', '${last}/32', 'set', ${Date.now()}, NULL, 'importer', NULL, 'last of the feed', NULL)`);
  try {
    await primary.batch(statements, "write");
  } finally {
    primary.close();
  }
}
