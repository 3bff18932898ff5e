import type { Client } from "@libsql/client";
import { readdir, readFile } from "node:fs/promises";
import { isBusy, whileBusy } from "./busy.ts";

const MIGRATIONS_DIR = new URL("../../migrations/", import.meta.url);

/**
 * Applies every migrations/*.sql not yet recorded, in name order, each in one write
 * transaction that first checks whether another node got there first: two nodes starting
 * at the same moment against one database serialise on the write lock, and the second
 * finds the migration recorded. Returns the names it applied.
 */
export async function migrate(client: Client): Promise<string[]> {
  // Busy too when another node is creating it: the client's pooled connections do not all
  // carry the busy timeout set on one of them.
  await whileBusy(() =>
    client.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)")
  );
  const names = (await readdir(MIGRATIONS_DIR)).filter((n) => n.endsWith(".sql")).sort();
  const applied: string[] = [];
  for (const name of names) {
    const sql = await readFile(new URL(name, MIGRATIONS_DIR), "utf8");
    if (await whileBusy(() => applyOne(client, name, sql))) applied.push(name);
  }
  return applied;
}

/** Applies one migration unless it is recorded already; true when this call applied it. */
async function applyOne(client: Client, name: string, sql: string): Promise<boolean> {
  const transaction = await client.transaction("write");
  try {
    const done = await transaction.execute({ sql: "SELECT 1 FROM schema_migrations WHERE name = ?", args: [name] });
    if (done.rows.length > 0) {
      await transaction.rollback();
      return false;
    }
    // One request for the whole file: over a network each statement was a round trip, and a
    // node far from its database (150 ms away) took most of 20 s to start.
    await transaction.batch([...splitStatements(sql), {
      sql: "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
      args: [name, Date.now()],
    }]);
    await transaction.commit();
    return true;
  } catch (error) {
    transaction.close();
    if (isBusy(error)) throw error;
    throw new Error(`migration ${name} failed: ${(error as Error).message}`, { cause: error });
  }
}

/** Our migrations hold plain DDL: statements end at a semicolon at the end of a line; `--` comments are dropped. */
function splitStatements(sql: string): string[] {
  return sql
    .split("\n")
    .filter((line) => !line.trim().startsWith("--"))
    .join("\n")
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter((s) => s !== "");
}
