import { type Client, createClient } from "@libsql/client";
import { Kysely } from "kysely";
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { formatPrefix, type IP, type Prefix, parsePrefix } from "../ip/address.ts";
import { LibsqlDialect } from "./libsql-dialect.ts";
import { migrate } from "./migrate.ts";
import { whileBusy } from "./busy.ts";
import { PrefixIndex } from "./prefix-index.ts";
import type { Database, ListChangeRow, ListEntry, ListKind } from "./types.ts";

export interface StoreOptions {
  readonly url: string;
  readonly authToken?: string;
  readonly syncUrl?: string;
  readonly node: string;
}

export interface Verdicts {
  readonly allow: ListEntry | undefined;
  readonly ban: ListEntry | undefined;
  readonly pass: ListEntry | undefined;
}

export interface ListWrite {
  readonly prefix: Prefix;
  readonly ttlMs: number | null;
  readonly check?: string;
  readonly reason?: string;
  readonly evidence?: Record<string, unknown>;
}

export interface EventWrite {
  readonly at: number;
  readonly clientIp: string;
  readonly clientPort: number;
  readonly event: string;
  readonly check?: string;
  readonly action: string;
  readonly evidence: Record<string, unknown>;
}

/**
 * The shared state of the fleet (bans, passes, allow entries, verdict events) behind an
 * in-memory index: lookups never wait on the database; writes update the index at once and
 * reach the database in order behind it.
 */
export class Store {
  readonly db: Kysely<Database>;
  private readonly indexes: Record<ListKind, PrefixIndex<ListEntry>> = {
    ban: new PrefixIndex(),
    pass: new PrefixIndex(),
    allow: new PrefixIndex(),
  };
  private lastSeq = 0;
  private writes: Promise<void> = Promise.resolve();
  private followTimer: ReturnType<typeof setInterval> | undefined;
  private following = false;

  private constructor(private readonly client: Client, private readonly node: string, private readonly onError: (error: Error) => void) {
    this.db = new Kysely<Database>({ dialect: new LibsqlDialect(client) });
  }

  /** Opens the database, applies migrations and loads the index. */
  static async open(options: StoreOptions, onError: (error: Error) => void): Promise<Store> {
    let client: Client | undefined;
    try {
      await createParentDir(options.url);
      client = createClient({ url: options.url, authToken: options.authToken, syncUrl: options.syncUrl });
      if (options.syncUrl) await client.sync();
      // WAL lets the CLI and other readers read while this node writes, instead of SQLITE_BUSY.
      else if (options.url.startsWith("file:")) await client.execute("PRAGMA journal_mode = WAL");
      await migrate(client);
      const store = new Store(client, options.node, onError);
      await store.catchUp();
      return store;
    } catch (error) {
      client?.close();
      throw new Error(`cannot open the store at ${options.url}: ${(error as Error).message}`, { cause: error });
    }
  }

  lookup(ip: IP, now: number): Verdicts {
    return {
      allow: this.indexes.allow.lookup(ip, now),
      ban: this.indexes.ban.lookup(ip, now),
      pass: this.indexes.pass.lookup(ip, now),
    };
  }

  /** Adds or replaces an entry: in the index now, in the database as soon as it can be written. */
  set(kind: ListKind, write: ListWrite, now: number): ListEntry {
    const entry: ListEntry = {
      kind,
      prefix: formatPrefix(write.prefix),
      createdAt: now,
      expiresAt: write.ttlMs === null ? null : now + write.ttlMs,
      node: this.node,
      check: write.check ?? null,
      reason: write.reason ?? null,
    };
    this.indexes[kind].set(write.prefix, entry);
    this.enqueue(() =>
      this.db.insertInto("list_changes").values({
        kind,
        prefix: entry.prefix,
        op: "set",
        created_at: now,
        expires_at: entry.expiresAt,
        node: this.node,
        check_id: entry.check,
        reason: entry.reason,
        evidence: write.evidence === undefined ? null : JSON.stringify(write.evidence),
      }).execute()
    );
    return entry;
  }

  remove(kind: ListKind, prefix: Prefix, now: number, reason?: string): void {
    this.indexes[kind].delete(prefix);
    this.enqueue(() =>
      this.db.insertInto("list_changes").values({
        kind,
        prefix: formatPrefix(prefix),
        op: "remove",
        created_at: now,
        expires_at: null,
        node: this.node,
        check_id: null,
        reason: reason ?? null,
        evidence: null,
      }).execute()
    );
  }

  recordEvent(event: EventWrite): void {
    this.enqueue(() =>
      this.db.insertInto("events").values({
        at: event.at,
        node: this.node,
        client_ip: event.clientIp,
        client_port: event.clientPort,
        event: event.event,
        check_id: event.check ?? null,
        action: event.action,
        evidence: JSON.stringify(event.evidence),
      }).execute()
    );
  }

  /** Entries in force at `now`, from the database (the CLI's view). */
  async list(kind: ListKind, now: number): Promise<ListChangeRow[]> {
    const rows = await this.db.selectFrom("list_changes").selectAll()
      .where("seq", "in", (qb) => qb.selectFrom("list_changes").select((eb) => eb.fn.max("seq").as("seq")).where("kind", "=", kind).groupBy("prefix"))
      .orderBy("seq").execute();
    return rows.filter((r) => r.op === "set" && (r.expires_at === null || r.expires_at > now));
  }

  /** Follows changes made by other nodes and the CLI every `intervalMs`. */
  follow(intervalMs: number): void {
    this.followTimer ??= setInterval(() => {
      if (this.following) return;
      this.following = true;
      this.catchUp().catch((error) => this.onError(error)).finally(() => this.following = false);
    }, intervalMs);
  }

  /** Waits until every write made so far has reached the database (or failed and been reported). */
  flush(): Promise<void> {
    return this.writes;
  }

  async close(): Promise<void> {
    if (this.followTimer !== undefined) clearInterval(this.followTimer);
    await this.writes;
    await this.db.destroy();
    this.client.close();
  }

  private async catchUp(): Promise<void> {
    const rows = await this.db.selectFrom("list_changes").selectAll().where("seq", ">", this.lastSeq).orderBy("seq").limit(10_000).execute();
    for (const row of rows) this.apply(row);
  }

  private apply(row: ListChangeRow): void {
    this.lastSeq = Math.max(this.lastSeq, row.seq);
    const prefix = parsePrefix(row.prefix);
    if (!prefix) return;
    const index = this.indexes[row.kind];
    if (row.op === "remove") return index.delete(prefix);
    index.set(prefix, {
      kind: row.kind,
      prefix: row.prefix,
      createdAt: row.created_at,
      expiresAt: row.expires_at,
      node: row.node,
      check: row.check_id,
      reason: row.reason,
    });
  }

  private enqueue(write: () => Promise<unknown>): void {
    this.writes = this.writes.then(() => whileBusy(write)).then(
      () => {},
      (error) => this.onError(new Error(`store write failed: ${(error as Error).message}`, { cause: error })),
    );
  }
}

/** The embedded default lives under data/, which a fresh checkout does not have yet. */
async function createParentDir(url: string): Promise<void> {
  if (!url.startsWith("file:")) return;
  const path = url.slice("file:".length).replace(/^\/\/(?=\/)/, "").split("?")[0];
  await mkdir(dirname(path), { recursive: true });
}
