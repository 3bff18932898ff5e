import { type Client, createClient } from "@libsql/client";
import { Kysely } from "kysely";
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { formatPrefix, type IP, type Prefix, parsePrefix } from "../ip/address.ts";
import { whileBusy } from "./busy.ts";
import { abortingFetch, DeadlineError, withDeadlines } from "./deadline.ts";
import { primaryAnswers } from "./primary-probe.ts";
import { LocalCopy } from "./local-copy.ts";
import { LibsqlDialect } from "./libsql-dialect.ts";
import { migrate } from "./migrate.ts";
import { PrefixIndex } from "./prefix-index.ts";
import { findWalDamage } from "./wal-check.ts";
import type { Database, GreylistTable, ListChangeRow, ListEntry, ListKind } from "./types.ts";
import { columnsOf, type WriteOp } from "./journal-rows.ts";
import { type QueueState, WriteQueue } from "./write-queue.ts";

export interface StoreOptions {
  readonly url: string;
  readonly authToken?: string;
  readonly syncUrl?: string;
  readonly node: string;
  /** Where writes wait while the database is away; without it they wait in memory only (the CLI). */
  readonly queueFile?: string;
  /** Load and follow the lists in memory (a node) or not (the CLI, which only queries). */
  readonly index?: boolean;
  /** The longest any one call to the database may take; past it the database counts as unreachable. */
  readonly timeoutMs?: number;
  /**
   * A node's own copy of the lists (beside its queue file): kept up to date while the
   * database answers, started from when it does not.
   */
  readonly localCopy?: string;
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

/** Where the lists this node screens with came from, until it has read them from the database. */
export type ListsSource = "database" | "replica-file" | "local-copy" | "nothing";

export interface StoreHealth extends QueueState {
  /** When this node last read from or wrote to the database successfully; 0: never since start. */
  readonly lastContact: number;
  readonly listsFrom: ListsSource;
}

export interface NodeInfo {
  readonly runtime: string;
  readonly listen: string;
  readonly startedAt: number;
  /** Where this node's admin API answers nudges from the others; undefined: it takes none. */
  readonly adminUrl?: string;
}

/**
 * The shared state of the fleet (bans, passes, allow entries, verdict events) behind an
 * in-memory index: lookups never wait on the database; writes update the index at once and
 * reach the database in order through a durable queue. For one (kind, prefix), the change
 * made last (by its creation time, then by database order) wins on every node.
 */
export class Store {
  readonly db: Kysely<Database>;
  private readonly indexes: Record<ListKind, PrefixIndex<ListEntry>> = {
    ban: new PrefixIndex(),
    pass: new PrefixIndex(),
    allow: new PrefixIndex(),
  };
  /** Creation time of the change in force per kind and prefix, removals included. */
  private readonly versions = new Map<string, number>();
  private readonly queue: WriteQueue;
  private lastSeq = 0;
  private lastContact = 0;
  private followTimer: ReturnType<typeof setInterval> | undefined;
  private readonly statements = new Map<string, string>();
  private following = false;
  /** A wake() that came while a follow was running: one more follow right after it. */
  private wakeAgain = false;
  private readonly listWriteListeners: (() => void)[] = [];
  private info: NodeInfo | undefined;
  private beats = 0;
  private followFailing = false;
  private followError: string | undefined;
  private retryAt = 0;
  private beatFailing = false;
  /** Until the database has answered once since start, the lists came from elsewhere. */
  private listsFrom: ListsSource = "database";
  private readonly copy: LocalCopy | undefined;
  private copyChanged = false;
  private copiedAt = 0;
  private copyFailing = false;
  /** An embedded replica whose primary did not answer at start: its file is read on its own, nothing is written to it. */
  private detached = false;
  private readonly client: Client;
  private readonly timeoutMs: number;

  private constructor(
    private raw: Client,
    private readonly options: StoreOptions,
    private readonly onError: (error: Error) => void,
  ) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    // A database file of our own never waits on a network, only on another process's lock
    // (busy_timeout), which is no outage.
    const local = filePath(options.url) !== undefined && options.syncUrl === undefined;
    this.client = local ? raw : withDeadlines(() => this.raw, this.timeoutMs, options.url, options.syncUrl === undefined ? undefined : () => this.askPrimary());
    this.db = new Kysely<Database>({ dialect: new LibsqlDialect(this.client) });
    this.queue = new WriteQueue(options.queueFile, (ops) => this.write(ops), onError);
    this.copy = options.localCopy === undefined ? undefined : new LocalCopy(options.localCopy);
  }

  /** Opens the database, applies migrations, loads the index and starts writing queued writes. */
  static async open(options: StoreOptions, onError: (error: Error) => void): Promise<Store> {
    let store: Store | undefined;
    try {
      const file = filePath(options.url);
      if (file !== undefined) await mkdir(dirname(file), { recursive: true });
      // A node screens with what it loads, so it checks first; the CLI's short queries do not
      // read the whole file each time (quick_check is a full pass).
      const checked = file !== undefined && !options.syncUrl && options.index !== false;
      if (checked) refuseDamagedWal(file);
      const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      const detached = options.syncUrl !== undefined && options.index !== false && !(await primaryAnswers(options.syncUrl, timeoutMs));
      store = new Store(detached ? createClient({ url: options.url }) : openClient(options, timeoutMs), options, onError);
      store.detached = detached;
      if (file !== undefined && !options.syncUrl) {
        // WAL lets the CLI and other readers read while this node writes, instead of SQLITE_BUSY.
        await store.client.execute("PRAGMA journal_mode = WAL");
        await store.client.execute("PRAGMA busy_timeout = 5000");
        if (checked) await refuseDamagedFile(store.client, file);
      }
      try {
        await store.connect();
      } catch (error) {
        // Only a database across a network can be away for a while; a local file that fails,
        // or a database that refuses our credentials, is the operator's to fix before start.
        const remote = file === undefined || options.syncUrl !== undefined;
        if (!remote || options.index === false || refusesAccess(error as Error)) throw error;
        await store.startWithout(error as Error);
      }
      store.queue.start();
      return store;
    } catch (error) {
      store?.raw.close();
      throw new Error(`cannot open the store at ${options.url}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Migrations, then the lists from the database: what a node does at start, and when the database returns. */
  private async connect(): Promise<void> {
    if (this.detached) await this.attach();
    if (this.options.syncUrl) await this.client.sync();
    await migrate(this.client);
    if (this.options.syncUrl) await this.client.sync();
    if (this.options.index !== false) {
      this.lastSeq = 0;
      await this.catchUp();
      // Written even when empty: a later start without the database then knows it saw one.
      this.copyChanged = true;
      this.saveCopy(Date.now(), true);
    }
    this.lastContact = Date.now();
    this.listsFrom = "database";
  }

  /** An embedded replica's calls to its primary block the event loop until it answers: it must have answered just before. */
  private async askPrimary(): Promise<void> {
    const syncUrl = this.options.syncUrl!;
    if (!(await primaryAnswers(syncUrl, this.timeoutMs))) throw new DeadlineError(`no answer from the primary at ${syncUrl} within ${this.timeoutMs} ms`);
  }

  /** Opens the embedded replica for real once its primary answers; until then its file was read on its own. */
  private async attach(): Promise<void> {
    await this.askPrimary();
    const replica = openClient(this.options, this.timeoutMs);
    this.raw.close();
    this.raw = replica;
    this.detached = false;
  }

  /**
   * The database cannot be reached at start: the node screens with what it knew (an embedded
   * replica's own file, else its local copy) plus its own writes still in the journal, and
   * following connects when the database answers.
   */
  private async startWithout(error: Error): Promise<void> {
    this.followFailing = true;
    this.followError = error.message;
    const reason = `cannot reach the database at ${this.options.url} (${error.message})`;
    if (this.options.syncUrl && await this.catchUp().then(() => true, () => false)) {
      this.listsFrom = "replica-file";
      this.onError(new Error(`${reason}: started from the embedded replica's own file, ${this.inForceTotal()} list entries; screening with them, writes wait in the queue, and the node catches up when the database answers`));
    } else {
      let saved;
      try {
        saved = this.copy?.read();
      } catch (copyError) {
        this.onError(new Error(`cannot read the local copy of the lists ${this.copy!.path}: ${(copyError as Error).message}; it is left as it is and rewritten once the database answers`));
      }
      for (const entry of saved?.entries ?? []) this.applyChange(changeOf(entry));
      this.listsFrom = saved === undefined ? "nothing" : "local-copy";
      this.onError(new Error(
        saved === undefined
          ? `${reason}, and there is no local copy of the lists${this.copy ? ` at ${this.copy.path}` : ""} (a first start?): this node greets and screens, but enforces no ban, pass or allow entry of the fleet (only MXSCREEN_ALLOW and what it decides itself) until the database answers`
          : `${reason}: started from the local copy ${this.copy!.path}, ${saved.entries.length} list entries saved at ${new Date(saved.savedAt).toISOString()}; screening with them, writes wait in the queue, and the node catches up when the database answers`,
      ));
    }
    // This node's own changes from before the restart that never reached the database.
    for (const o of this.queue.waiting()) {
      if (o.table === "list_changes") this.applyChange(o.row as unknown as ListChange);
    }
  }

  get node(): string {
    return this.options.node;
  }

  lookup(ip: IP, now: number): Verdicts {
    return {
      allow: this.indexes.allow.lookup(ip, now),
      ban: this.indexes.ban.lookup(ip, now),
      pass: this.indexes.pass.lookup(ip, now),
    };
  }

  /** Entries of one list held in this node's memory (expired ones go at the next sweep). */
  inForce(kind: ListKind): number {
    return this.indexes[kind].size;
  }

  /** Adds or replaces an entry: in the index now, in the database as soon as it can be written. */
  set(kind: ListKind, write: ListWrite, now: number): ListEntry {
    const { entry, change } = this.setChange(kind, write, now);
    this.inMemory(entry, write.prefix);
    this.queue.push(change);
    return entry;
  }

  /**
   * Adds or replaces many entries at once (an import): written to the database now, in one
   * transaction, rather than through the queue, which holds at most 100,000 writes; then in
   * this node's index. Throws when the database cannot take them: nothing of this batch is in
   * force then, and the caller says how far it got.
   */
  async setMany(writes: readonly { readonly kind: ListKind; readonly write: ListWrite }[], now: number): Promise<void> {
    const changes = writes.map(({ kind, write }) => ({ ...this.setChange(kind, write, now), prefix: write.prefix }));
    // No op ids: nothing replays these from the journal, and a million random ids in a unique
    // index cost more than the rest of the import (random page writes, measured 2×).
    await this.write(changes.map((c) => c.change), false);
    for (const { entry, prefix } of changes) this.inMemory(entry, prefix);
  }

  private setChange(kind: ListKind, write: ListWrite, now: number): { entry: ListEntry; change: WriteOp } {
    const entry: ListEntry = {
      kind,
      prefix: formatPrefix(write.prefix),
      createdAt: now,
      expiresAt: write.ttlMs === null ? null : now + write.ttlMs,
      node: this.options.node,
      check: write.check ?? null,
      reason: write.reason ?? null,
    };
    const change = op("list_changes", {
      kind,
      prefix: entry.prefix,
      op: "set",
      created_at: now,
      expires_at: entry.expiresAt,
      node: this.options.node,
      check_id: entry.check,
      reason: entry.reason,
      evidence: write.evidence === undefined ? null : JSON.stringify(write.evidence),
    });
    return { entry, change };
  }

  private inMemory(entry: ListEntry, prefix: Prefix): void {
    if (this.options.index === false) return;
    this.versions.set(`${entry.kind} ${entry.prefix}`, entry.createdAt);
    this.indexes[entry.kind].set(prefix, entry);
    this.copyChanged = true;
  }

  remove(kind: ListKind, prefix: Prefix, now: number, reason?: string): void {
    this.versions.set(`${kind} ${formatPrefix(prefix)}`, now);
    this.indexes[kind].delete(prefix);
    this.copyChanged = true;
    this.queue.push(op("list_changes", {
      kind,
      prefix: formatPrefix(prefix),
      op: "remove",
      created_at: now,
      expires_at: null,
      node: this.options.node,
      check_id: null,
      reason: reason ?? null,
      evidence: null,
    }));
  }

  /** A greylist triplet's new state, written like every other change: in order, never lost. */
  writeGreylist(row: Omit<GreylistTable, "node" | "seq">): void {
    this.queue.push(op("greylist", { ...row, node: this.options.node }));
  }

  /** This node's own total for one slot of a fleet-wide counter; a later total for the same slot replaces it. */
  writeCount(name: string, key: string, slot: number, count: number): void {
    this.queue.push(op("counters", { name, key, slot, node: this.options.node, count }));
  }

  /** `listener` hears when a ban or allow change made here has reached the database (passes are too many to tell). */
  onListWritten(listener: () => void): void {
    this.listWriteListeners.push(listener);
  }

  recordEvent(event: EventWrite): void {
    this.queue.push(op("events", {
      at: event.at,
      node: this.options.node,
      client_ip: event.clientIp,
      client_port: event.clientPort,
      event: event.event,
      check_id: event.check ?? null,
      action: event.action,
      evidence: JSON.stringify(event.evidence),
    }));
  }

  /**
   * The entries in force at `now`, read from the database: what every node will apply. Read in
   * pages, since sqld refuses to answer more than a few megabytes at once (a million entries
   * are about a hundred).
   */
  async list(kind: ListKind, now: number): Promise<ListChangeRow[]> {
    const rows: ListChangeRow[] = [];
    for (let after = 0;;) {
      const page = await this.listPage(kind, after);
      rows.push(...page.filter((r) => r.op === "set" && (r.expires_at === null || r.expires_at > now)));
      if (page.length < LIST_PAGE) break;
      after = page[page.length - 1].seq;
    }
    return rows.sort((x, y) => x.created_at - y.created_at || x.seq - y.seq);
  }

  /**
   * When each entry in force ends (null: never), by prefix, from the change log read in pages
   * of five narrow columns: what an import compares its lines with, cheaper for the database
   * than list()'s per-row subquery at a million entries.
   */
  async expiries(kind: ListKind, now: number): Promise<Map<string, number | null>> {
    const latest = new Map<string, { op: "set" | "remove"; createdAt: number; expiresAt: number | null }>();
    for (let after = 0;;) {
      const page = await this.db.selectFrom("list_changes").select(["seq", "prefix", "op", "created_at", "expires_at"])
        .where("kind", "=", kind).where("seq", ">", after).orderBy("seq").limit(LIST_PAGE).execute();
      for (const row of page) {
        // The same rule as the index's: the latest creation time wins, then the later seq.
        if ((latest.get(row.prefix)?.createdAt ?? -Infinity) > row.created_at) continue;
        latest.set(row.prefix, { op: row.op, createdAt: row.created_at, expiresAt: row.expires_at });
      }
      if (page.length < LIST_PAGE) break;
      after = page[page.length - 1].seq;
    }
    const inForce = new Map<string, number | null>();
    for (const [prefix, change] of latest) {
      if (change.op === "set" && (change.expiresAt === null || change.expiresAt > now)) inForce.set(prefix, change.expiresAt);
    }
    return inForce;
  }

  private listPage(kind: ListKind, after: number): Promise<ListChangeRow[]> {
    return this.db.selectFrom("list_changes as c").selectAll("c")
      .where("c.kind", "=", kind).where("c.seq", ">", after)
      .where(({ not, exists, selectFrom }) =>
        not(exists(
          selectFrom("list_changes as n").select("n.seq")
            .whereRef("n.kind", "=", "c.kind").whereRef("n.prefix", "=", "c.prefix")
            .where(({ or, and, eb }) =>
              or([
                eb("n.created_at", ">", eb.ref("c.created_at")),
                and([eb("n.created_at", "=", eb.ref("c.created_at")), eb("n.seq", ">", eb.ref("c.seq"))]),
              ])
            ),
        ))
      )
      .orderBy("c.seq").limit(LIST_PAGE).execute();
  }

  /** The entries of one list in force in this node's memory: what the admin side shows while the database is away. */
  entries(kind: ListKind, now: number): ListEntry[] {
    return [...this.indexes[kind].values()].filter((e) => e.expiresAt === null || e.expiresAt > now).sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Reachable only while following and writing both get answers. */
  health(): StoreHealth {
    const queue = this.queue.state;
    return {
      ...queue,
      reachable: queue.reachable && !this.followFailing,
      lastError: queue.lastError ?? (this.followFailing ? this.followError : undefined),
      lastContact: this.lastContact,
      listsFrom: this.listsFrom,
    };
  }

  /** Follows changes made by other nodes, the CLI and the API every `intervalMs`, and beats the node's heartbeat. */
  follow(intervalMs: number, info: NodeInfo): void {
    this.info = info;
    if (this.followTimer !== undefined) return;
    const tick = () => {
      // While the database is away, one try a second: each waits at most its deadline.
      if (this.following || (this.followFailing && Date.now() < this.retryAt)) return;
      this.followOnce(this.beats++ % Math.max(1, Math.round(5000 / intervalMs)) === 0);
    };
    // The first heartbeat at once: the other nodes learn of this one (and where to nudge it) now.
    tick();
    this.followTimer = setInterval(tick, intervalMs);
  }

  /**
   * Reads the other nodes' changes now rather than at the next poll (another node nudged this
   * one after writing a ban). A wake during a follow runs one more right after it, since that
   * follow may have read before the change landed.
   */
  wake(): void {
    if (this.followTimer === undefined) return;
    if (this.following) this.wakeAgain = true;
    else this.followOnce(false);
  }

  private followOnce(heartbeat: boolean): void {
    this.following = true;
    (async () => {
      const reconnecting = this.listsFrom !== "database";
      if (reconnecting) await this.connect();
      else {
        if (this.options.syncUrl) await this.client.sync();
        await this.catchUp();
      }
      this.lastContact = Date.now();
      if (reconnecting) this.onError(new Error(`store reached at ${this.options.url}: caught up, ${this.inForceTotal()} list entries in force; writes made meanwhile follow from the queue`));
      else if (this.followFailing) this.onError(new Error(`store reachable again at ${this.options.url}`));
      this.followFailing = false;
      this.followError = undefined;
      if (heartbeat) {
        this.sweep(Date.now());
        this.saveCopy(Date.now());
        await this.beat(this.info!);
      }
    })().catch((error) => {
      if (!this.followFailing) this.onError(new Error(`cannot follow the store at ${this.options.url}, screening with what this node has: ${(error as Error).message}`));
      this.followFailing = true;
      this.followError = (error as Error).message;
      this.retryAt = Date.now() + RETRY_MS;
    }).finally(() => {
      this.following = false;
      if (!this.wakeAgain) return;
      this.wakeAgain = false;
      this.followOnce(false);
    });
  }

  /** Waits until every write made so far has reached the database; false if `timeoutMs` passed first. */
  flush(timeoutMs = 10_000): Promise<boolean> {
    return this.queue.flush(timeoutMs);
  }

  async close(timeoutMs = 5_000): Promise<void> {
    if (this.followTimer !== undefined) clearInterval(this.followTimer);
    this.saveCopy(Date.now(), true);
    await this.queue.flush(timeoutMs);
    this.queue.close();
    // The client's close leaves the log as it is: after a node's clean stop everything is in
    // the database file itself, and a log left non-empty means a crash. The short wait keeps
    // a checkpoint from holding up the writers of other processes on the same file for long;
    // the last one to stop empties the log.
    if (filePath(this.options.url) !== undefined && !this.options.syncUrl && this.options.index !== false) {
      await this.client.execute("PRAGMA busy_timeout = 200")
        .then(() => this.client.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
        .catch((error) =>
          this.onError(new Error(`cannot checkpoint the store at ${this.options.url} before closing, its -wal file keeps the latest writes: ${(error as Error).message}`))
        );
    }
    await this.db.destroy();
    this.client.close();
  }

  private inForceTotal(): number {
    return this.indexes.ban.size + this.indexes.pass.size + this.indexes.allow.size;
  }

  /**
   * Writes the local copy when the lists changed, at most every COPY_EVERY_MS unless `now` is
   * the moment (the lists just read whole, a clean stop): a copy a little behind costs a
   * restart during an outage only the others' latest changes (this node's own wait in the
   * journal, which is read at start).
   */
  private saveCopy(now: number, atOnce = false): void {
    if (this.copy === undefined || !this.copyChanged || (!atOnce && now - this.copiedAt < COPY_EVERY_MS)) return;
    const entries = Object.values(this.indexes).flatMap((index) => [...index.values()]).filter((e) => e.expiresAt === null || e.expiresAt > now);
    try {
      this.copy.write(entries, now);
    } catch (error) {
      if (!this.copyFailing) this.onError(new Error(`cannot write the local copy of the lists ${this.copy.path} (${(error as Error).message}): a restart while the database is away would start from an older copy; tried again at the next change`));
      this.copyFailing = true;
      return;
    }
    if (this.copyFailing) this.onError(new Error(`local copy of the lists ${this.copy.path} written again`));
    this.copyFailing = false;
    this.copyChanged = false;
    this.copiedAt = now;
  }

  /** Forgets entries that expired: they already stopped applying at their time; this frees their memory. */
  private sweep(now: number): void {
    for (const index of Object.values(this.indexes)) index.sweep(now);
  }

  /**
   * A heartbeat that cannot be written (a full disk under a `file:` database) is not a store
   * out of reach: the lists are still read, so it is logged once on its own.
   */
  private async beat(info: NodeInfo): Promise<void> {
    try {
      await this.writeBeat(info);
    } catch (error) {
      // No answer at all is the database away, not a disk that refuses the heartbeat.
      if (error instanceof DeadlineError) throw error;
      if (!this.beatFailing) this.onError(new Error(`cannot write this node's heartbeat to the store at ${this.options.url}, still screening and following: ${(error as Error).message}`));
      this.beatFailing = true;
      return;
    }
    if (this.beatFailing) this.onError(new Error(`heartbeat written to the store at ${this.options.url} again`));
    this.beatFailing = false;
  }

  private async writeBeat(info: NodeInfo): Promise<void> {
    const now = Date.now();
    const row = { runtime: info.runtime, listen: info.listen, started_at: info.startedAt, last_seen: now, admin_url: info.adminUrl ?? null };
    await this.db.insertInto("nodes").values({ name: this.options.node, ...row }).onConflict((oc) => oc.column("name").doUpdateSet(row)).execute();
  }

  /**
   * One INSERT for a run of rows of one table: preparing a statement per row (and building it
   * with Kysely) cost more CPU than the writing (most of a pregreet verdict's, measured). The
   * text for each row count is built once, from our own column list, never from a row's keys.
   */
  private insertRows(table: WriteOp["table"], rows: readonly WriteOp[], opIds: boolean): { sql: string; args: (string | number | null)[] } {
    const columns = columnsOf(table);
    const key = `${table}x${rows.length}`;
    let sql = this.statements.get(key);
    if (sql === undefined) {
      const tuple = `(${[...columns, "op_id"].map(() => "?").join(", ")})`;
      sql = `insert into "${table}" (${[...columns, "op_id"].map((column) => `"${column}"`).join(", ")}) values ${
        rows.map(() => tuple).join(", ")
      } on conflict ("op_id") do nothing`;
      this.statements.set(key, sql);
    }
    return { sql, args: rows.flatMap((o) => [...columns.map((column) => o.row[column] ?? null), opIds ? o.id : null]) };
  }

  /**
   * An upsert that only moves forward, so a greylist write replayed late cannot undo a newer
   * state; each change takes the next seq, which the other nodes follow.
   */
  private greylistUpsert(o: WriteOp): { sql: string; args: (string | number | null)[] } {
    return {
      sql: `insert into "greylist" ("triplet", "first_seen", "passed_at", "expires_at", "node", "seq") values (?, ?, ?, ?, ?, ${TAKEN_SEQ("greylist")}) ` +
        `on conflict ("triplet") do update set "first_seen" = excluded."first_seen", "passed_at" = excluded."passed_at", ` +
        `"expires_at" = excluded."expires_at", "node" = excluded."node", "seq" = excluded."seq" where "greylist"."expires_at" < excluded."expires_at"`,
      args: columnsOf("greylist").map((column) => o.row[column] ?? null),
    };
  }

  /** A node's count for a slot only grows: a total replayed late from the queue cannot lower a newer one. */
  private counterUpsert(o: WriteOp): { sql: string; args: (string | number | null)[] } {
    return {
      sql: `insert into "counters" ("name", "key", "slot", "node", "count", "seq") values (?, ?, ?, ?, ?, ${TAKEN_SEQ("counters")}) ` +
        `on conflict ("name", "key", "slot", "node") do update set "count" = excluded."count", "seq" = excluded."seq" where "counters"."count" < excluded."count"`,
      args: columnsOf("counters").map((column) => o.row[column] ?? null),
    };
  }

  /** `opIds` false: the rows carry no op id (writes that never wait in the journal). */
  private async write(ops: readonly WriteOp[], opIds = true): Promise<void> {
    if (this.detached) throw new Error(`the primary at ${this.options.syncUrl} has not answered since start: writes wait until the embedded replica is attached to it`);
    // Rows are grouped by table; each table keeps its own order, which is all the readers rely
    // on (list_changes by seq, events by time, greylist by its forward-only upsert).
    const runs = new Map<WriteOp["table"], WriteOp[]>();
    const statements: { sql: string; args: (string | number | null)[] }[] = [];
    for (const o of ops) {
      if (o.table === "greylist" || o.table === "counters") {
        statements.push(NEXT_SEQ(o.table), o.table === "greylist" ? this.greylistUpsert(o) : this.counterUpsert(o));
        continue;
      }
      const run = runs.get(o.table);
      if (run) run.push(o);
      else runs.set(o.table, [o]);
    }
    for (const [table, run] of runs) {
      for (let i = 0; i < run.length; i += ROWS_PER_INSERT) statements.push(this.insertRows(table, run.slice(i, i + ROWS_PER_INSERT), opIds));
    }
    await whileBusy(() => this.client.batch(statements, "write"));
    this.lastContact = Date.now();
    if (ops.some((o) => o.table === "list_changes" && o.row.kind !== "pass")) for (const listener of this.listWriteListeners) listener();
  }

  private async catchUp(): Promise<void> {
    for (;;) {
      const rows = await this.db.selectFrom("list_changes").selectAll().where("seq", ">", this.lastSeq).orderBy("seq").limit(10_000).execute();
      for (const row of rows) {
        this.lastSeq = Math.max(this.lastSeq, row.seq);
        this.applyChange(row);
      }
      if (rows.length < 10_000) return;
    }
  }

  /** A change from the database, the local copy or the journal: the one made last wins. */
  private applyChange(row: ListChange): void {
    const prefix = parsePrefix(row.prefix);
    if (!prefix) return;
    const key = `${row.kind} ${row.prefix}`;
    if ((this.versions.get(key) ?? -Infinity) > row.created_at) return;
    this.versions.set(key, row.created_at);
    this.copyChanged = true;
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
}

/** What the index needs of a change, wherever it comes from. */
type ListChange = Pick<ListChangeRow, "kind" | "prefix" | "op" | "created_at" | "expires_at" | "node" | "check_id" | "reason">;

function changeOf(entry: ListEntry): ListChange {
  return { kind: entry.kind, prefix: entry.prefix, op: "set", created_at: entry.createdAt, expires_at: entry.expiresAt, node: entry.node, check_id: entry.check, reason: entry.reason };
}

function openClient(options: StoreOptions, timeoutMs: number): Client {
  return createClient({ url: options.url, authToken: options.authToken, syncUrl: options.syncUrl, fetch: abortingFetch(timeoutMs) });
}

/** MXSCREEN_DB_TIMEOUT's default. */
const DEFAULT_TIMEOUT_MS = 3_000;
/** How often a database that did not answer is tried again by the follower. */
const RETRY_MS = 1_000;
/** The local copy of the lists is rewritten at most this often (and at a clean stop). */
const COPY_EVERY_MS = 30_000;

/** sqld and Turso answer 401 or 403 to a missing or wrong token: no outage, a setting to fix. */
function refusesAccess(error: Error): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (/\b(401|403)\b/.test(e.message)) return true;
  }
  return false;
}

/** Takes the next seq of a followed table, for the upsert after it in the same transaction to give its row. */
const NEXT_SEQ = (table: "greylist" | "counters") => ({ sql: `update "seqs" set "value" = "value" + 1 where "name" = ?`, args: [table] });
/** The seq just taken (writes to one database are serialised, so no one else took it). */
const TAKEN_SEQ = (table: "greylist" | "counters") => `(select "value" from "seqs" where "name" = '${table}')`;

/** Rows per page of list(): about 3 MB of JSON from sqld, below its response limit. */
const LIST_PAGE = 20_000;

/** Rows per INSERT: well below SQLite's 32,766 bound variables with any of our tables. */
const ROWS_PER_INSERT = 100;

function op(table: WriteOp["table"], row: WriteOp["row"]): WriteOp {
  return { id: crypto.randomUUID(), table, row };
}

/** The path of a `file:` database (the embedded default lives under data/, which a fresh checkout does not have yet). */
function filePath(url: string): string | undefined {
  if (!url.startsWith("file:")) return undefined;
  return url.slice("file:".length).replace(/^\/\/(?=\/)/, "").split("?")[0];
}

function refuseDamagedWal(file: string): void {
  const damage = findWalDamage(`${file}-wal`);
  if (damage === undefined) return;
  throw new Error(
    `its write-ahead log ${file}-wal is damaged at frame ${damage.frame} of ${damage.frames}: SQLite would silently leave out the ${damage.lostCommits} ` +
      `transactions committed after it (bans among them), so mxscreen does not start on it. Copy ${file} and ${file}-wal aside, then restore a backup, ` +
      `or move ${file}-wal away to start with what ${file} holds and lose those transactions`,
  );
}

/** A damaged database file would answer with fewer bans than it holds, or fail later at a random write. */
async function refuseDamagedFile(client: Client, file: string): Promise<void> {
  let problems: string[];
  try {
    problems = (await client.execute("PRAGMA quick_check")).rows.map((row) => String(row[0]));
  } catch (error) {
    problems = [(error as Error).message];
  }
  if (problems.length === 1 && problems[0] === "ok") return;
  const shown = problems.slice(0, 3).map((problem) => problem.replace(/\s+/g, " ").slice(0, 300)).join("; ");
  throw new Error(
    `the database file ${file} is damaged (quick_check: ${shown}), so mxscreen does not start on a list it cannot trust. ` +
      `Restore a backup, or recover it with: sqlite3 ${file} .recover | sqlite3 recovered.db, and point MXSCREEN_DB_URL at recovered.db`,
  );
}
