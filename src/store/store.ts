import { nextOpId } from "./op-ids.ts";
import { type Client, createClient } from "@libsql/client";
import { Kysely, sql } from "kysely";
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { formatPrefix, type IP, parsePrefix, type Prefix } from "../ip/address.ts";
import { whileBusy } from "./busy.ts";
import { abortingFetch, DeadlineError, withDeadlines } from "./deadline.ts";
import { LocalCopy } from "./local-copy.ts";
import { nextTurn } from "./next-turn.ts";
import { primaryAnswers } from "./primary-probe.ts";
import { LibsqlDialect } from "./libsql-dialect.ts";
import { migrate } from "./migrate.ts";
import { FollowPace } from "./follow-pace.ts";
import {
  housekeep,
  HOUSEKEEPING_EVERY_MS,
  readSizes,
  REMOVAL_KEPT_MS,
  type Retention,
  type SizedTable,
  TRIMMED_BELOW,
} from "./housekeeping.ts";
import { ListIndex, type Lists } from "./prefix-index.ts";
import { findWalDamage } from "./wal-check.ts";
import type { Database, GreylistTable, ListChangeRow, ListEntry, ListKind, ListRow } from "./types.ts";
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
  /** What a node's housekeeping keeps of `events`; without it this store does no housekeeping (the CLI). */
  readonly retention?: Retention;
  /** The longest any one call to the database may take; past it the database counts as unreachable. */
  readonly timeoutMs?: number;
  /**
   * A node's own copy of the lists (beside its queue file): kept up to date while the
   * database answers, started from when it does not.
   */
  readonly localCopy?: string;
  /**
   * How often an embedded replica's file takes its primary's new frames (libsql's background
   * sync; MXSCREEN_REPLICA_SYNC_INTERVAL). The lists are followed from the primary itself.
   */
  readonly replicaSyncMs?: number;
  /** Huge pages for the index's table and garbage collection during a load, from the runtime adapter (`bigMemory`). */
  readonly memory?: { allocate(bytes: number): Uint32Array; collect(): void };
}

/** What the lists say about one address: read it at once, it holds until the next lookup (`keep()` an entry to hold it). */
export type Verdicts = Lists;

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

export interface FollowOptions {
  /** The pace while changes keep coming (MXSCREEN_FOLLOW_INTERVAL). */
  readonly fastMs: number;
  /** The slowest pace, reached after reads that found nothing (MXSCREEN_FOLLOW_IDLE_INTERVAL). */
  readonly idleMs: number;
}

/** A node's heartbeat: often enough for the dashboard (which marks a node silent for 30 s). */
const HEARTBEAT_MS = 15_000;
/** Slots of the index looked at per heartbeat: tens of milliseconds; all of ten million entries in about five minutes. */
const SWEEP_SLOTS = 1 << 20;
/** Rows per read when loading `lists` or catching up with `list_changes`. */
const PAGE = 10_000;
/** A load collects its garbage every this many pages (a million rows, a few megabytes of JSON each), so that it never piles up. */
const COLLECT_EVERY_PAGES = 100;

/**
 * The shared state of the fleet (bans, passes, allow entries, verdict events) behind an
 * in-memory index: lookups never wait on the database; writes update the index at once and
 * reach the database in order through a durable queue. For one (kind, prefix), the change
 * made last (by its creation time, then by database order) wins on every node.
 */
export class Store {
  readonly db: Kysely<Database>;
  private readonly index: ListIndex;
  private readonly queue: WriteQueue;
  private lastSeq = 0;
  private lastContact = 0;
  private readonly statements = new Map<string, string>();
  /** The writes made inside `together`, queued when it ends. */
  private held: WriteOp[] | undefined;
  private readonly listWriteListeners: (() => void)[] = [];
  private readonly banListeners: ((prefix: Prefix) => void)[] = [];
  private follower: Follower | undefined;
  private followFailing = false;
  private followError: string | undefined;
  private retryAt = 0;
  private beatFailing = false;
  private sizes: Partial<Record<SizedTable, number>> = {};
  private nextBeatAt = 0;
  private nextHousekeepingAt = 0;
  /** Until the database has answered once since start, the lists came from elsewhere. */
  private listsFrom: ListsSource = "database";
  private readonly copy: LocalCopy | undefined;
  private copyChanged = false;
  private copiedAt = 0;
  private copyFailing = false;
  private copying: Promise<void> | undefined;
  /** An embedded replica whose primary did not answer at start: its file is read on its own, nothing is written to it. */
  private detached = false;
  private readonly client: Client;
  private readonly primary: Client | undefined;
  /** Where the change log is followed from: an embedded replica's primary, over HTTP, else the database itself. */
  private readonly changes: Client;
  private readonly timeoutMs: number;

  private constructor(
    private raw: Client,
    private readonly options: StoreOptions,
    private readonly onError: (error: Error) => void,
  ) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.index = new ListIndex(options.memory?.allocate);
    // A database file of our own never waits on a network, only on another process's lock
    // (busy_timeout), which is no outage.
    const local = filePath(options.url) !== undefined && options.syncUrl === undefined;
    // An embedded replica writes to its primary over HTTP, not through the replica (which would hold the event loop).
    this.primary = options.syncUrl === undefined
      ? undefined
      : createClient({ url: options.syncUrl, authToken: options.authToken, fetch: abortingFetch(this.timeoutMs) });
    this.client = local ? raw : withDeadlines(() => this.raw, this.timeoutMs, options.url, this.primary);
    this.changes = this.primary === undefined ? this.client : withDeadlines(() => this.primary!, this.timeoutMs, options.syncUrl!);
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
        try {
          // The timeout first: a second node starting at the same moment holds the lock that
          // switching to WAL takes, and without it that answers SQLITE_BUSY at once.
          await store.client.execute("PRAGMA busy_timeout = 5000");
          await whileBusy(() => store!.client.execute("PRAGMA journal_mode = WAL"));
        } catch (error) {
          // A schema too damaged to read fails here, before quick_check could say so.
          if (/SQLITE_(CORRUPT|NOTADB)/.test((error as Error).message)) throw damagedFile(file, [(error as Error).message]);
          throw error;
        }
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
      store?.primary?.close();
      throw new Error(`cannot open the store at ${options.url}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Migrations, then the lists from the database: what a node does at start, and when the database returns. */
  private async connect(): Promise<void> {
    if (this.detached) await this.attach();
    // An embedded replica's migrations go to its primary (over HTTP, like all its writes).
    await migrate(this.client);
    if (this.options.syncUrl && this.options.index === false) await this.syncForCommand();
    if (this.options.index !== false) {
      // Changes this node made meanwhile are newer than what the database had: the index keeps them.
      if (this.options.syncUrl) await this.loadReplica();
      else await this.load();
      // Written even when empty: a later start without the database then knows it saw one.
      this.copyChanged = true;
      await this.saveCopy(Date.now(), true);
    }
    this.lastContact = Date.now();
    this.listsFrom = "database";
  }

  /**
   * An embedded replica loads the lists from its own file, however far behind (it holds its
   * primary's commits in order, up to some point), then reads the rest of the change log from
   * the primary. Only a file without the primary's newest schema (a new replica's has no tables
   * at all) waits for the background sync first.
   */
  private async loadReplica(): Promise<void> {
    const newest = "SELECT max(name) FROM schema_migrations";
    const [primary, own] = await Promise.all([this.changes.execute(newest), this.client.execute(newest).catch(() => undefined)]);
    if (own?.rows[0]?.[0] !== primary.rows[0][0]) await this.replicaCaughtUp();
    await this.load();
    await this.catchUp();
  }

  /**
   * Waits until an embedded replica's own file holds everything its primary held a moment ago:
   * a mark written to the primary, then looked for in the file, which libsql's background sync
   * fills in commit order. A `sync()` called here instead ran on the event loop and held it for
   * the whole transfer, at start and at each return of the primary after an outage (while the
   * node screens: 300 ms for a change of 100,000 rows, `npm run bench:replica-sync`).
   */
  private async replicaCaughtUp(): Promise<void> {
    const name = `replica:${this.options.node}`;
    const mark = Date.now();
    await this.client.execute({
      sql:
        "INSERT INTO store_marks (name, value, at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value, at = excluded.at",
      args: [name, mark, mark],
    });
    const waitMs = this.timeoutMs * REPLICA_CATCH_UP_TIMEOUTS;
    for (const deadline = Date.now() + waitMs;;) {
      // Before its first frames arrive, a new replica's file has no tables at all.
      const seen = await this.client.execute({ sql: "SELECT value FROM store_marks WHERE name = ?", args: [name] }).then(
        (r) => r.rows[0]?.[0],
        () => undefined,
      );
      if (Number(seen) === mark) return;
      if (Date.now() > deadline) {
        throw new DeadlineError(
          `the embedded replica ${this.options.url} has not caught up with its primary ${this.options.syncUrl} within ${waitMs} ms (its background sync is still transferring)`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, REPLICA_LOOK_MS));
    }
  }

  /** The CLI on an embedded replica: a command serves no one meanwhile, so it syncs at once rather than waiting for the background sync. */
  private async syncForCommand(): Promise<void> {
    await this.askPrimary();
    await this.raw.sync();
  }

  /** An embedded replica's calls to its primary block the event loop until it answers: it must have answered just before. */
  private async askPrimary(): Promise<void> {
    const syncUrl = this.options.syncUrl!;
    if (!(await primaryAnswers(syncUrl, this.timeoutMs))) {
      throw new DeadlineError(`no answer from the primary at ${syncUrl} within ${this.timeoutMs} ms`);
    }
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
    // An embedded replica's file takes its primary's frames only every replicaSyncMs: the local
    // copy, written at a clean stop, may hold newer entries, and the later version of each wins.
    const fromFile = this.options.syncUrl !== undefined && await this.load().then(() => true, () => false);
    let saved;
    let refused: string | undefined;
    try {
      saved = this.copy?.read();
    } catch (copyError) {
      refused = (copyError as Error).message;
    }
    if (saved !== undefined) {
      this.index.reserve(this.inForceTotal() + saved.count);
      for (const entry of saved.entries) {
        this.index.apply({
          kind: entry.kind,
          prefix: entry.range,
          op: "set",
          createdAt: entry.createdAt,
          expiresAt: entry.expiresAt,
          node: entry.node,
          check: entry.check,
          reason: entry.reason,
        });
      }
    }
    const withCopy = saved === undefined ? "" : ` and the local copy ${this.copy!.path} saved at ${new Date(saved.savedAt).toISOString()}`;
    const then = "screening with them, writes wait in the queue, and the node catches up when the database answers";
    if (fromFile) {
      this.listsFrom = "replica-file";
      this.onError(
        new Error(
          `${reason}: started from the embedded replica's own file${withCopy}, ${this.inForceTotal()} list entries; ${then}${
            refused === undefined ? "" : ` (the local copy is not used: ${refused})`
          }`,
        ),
      );
    } else {
      this.listsFrom = saved === undefined ? "nothing" : "local-copy";
      const withNothing =
        "this node greets and screens, but enforces no ban, pass or allow entry of the fleet (only MXSCREEN_ALLOW and what it decides itself) until the database answers";
      this.onError(
        new Error(
          refused !== undefined
            ? `${reason}, and ${refused}: ${withNothing}; the copy is left as it is for a look and written again once the database answers`
            : saved === undefined
            ? `${reason}, and there is no local copy of the lists${
              this.copy ? ` at ${this.copy.path}` : ""
            } (a first start?): ${withNothing}`
            : `${reason}: started from the local copy ${this.copy!.path}, ${saved.count} list entries saved at ${
              new Date(saved.savedAt).toISOString()
            }; ${then}`,
        ),
      );
    }
    // This node's own changes from before the restart that never reached the database.
    for (const o of this.queue.waiting()) {
      if (o.table !== "list_changes") continue;
      const row = o.row as unknown as ListChangeWrite;
      const prefix = parsePrefix(row.prefix);
      if (prefix) {
        this.index.apply({
          kind: row.kind,
          prefix,
          op: row.op,
          createdAt: row.created_at,
          expiresAt: row.expires_at,
          node: row.node,
          check: row.check_id,
          reason: row.reason,
        });
      }
    }
  }

  get node(): string {
    return this.options.node;
  }

  lookup(ip: IP, now: number): Verdicts {
    return this.index.lookupAll(ip, now);
  }

  /** Entries of one list held in this node's memory (expired ones go at the next sweep). */
  inForce(kind: ListKind): number {
    return this.index.size(kind);
  }

  /** Rows per table as the housekeeping node counted them last (every few minutes), for /metrics. */
  tableRows(): Partial<Record<SizedTable, number>> {
    return this.sizes;
  }

  /**
   * Runs `writes` and queues the writes it makes as one: one append to the journal instead of one
   * per write (a pregreet verdict's ban and event row); they are in the journal when it returns.
   */
  together(writes: () => void): void {
    if (this.held !== undefined) return writes();
    const held: WriteOp[] = this.held = [];
    try {
      writes();
    } finally {
      this.held = undefined;
      this.queue.pushAll(held);
    }
  }

  private enqueue(o: WriteOp): void {
    if (this.held !== undefined) this.held.push(o);
    else this.queue.push(o);
  }

  /** Adds or replaces an entry: in the index now, in the database as soon as it can be written. */
  set(kind: ListKind, write: ListWrite, now: number): ListEntry {
    const { entry, change } = this.setChange(kind, write, now);
    this.inMemory(entry, write.prefix);
    this.enqueue(change);
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
    this.index.apply({
      kind: entry.kind,
      prefix,
      op: "set",
      createdAt: entry.createdAt,
      expiresAt: entry.expiresAt,
      node: entry.node,
      check: entry.check,
      reason: entry.reason,
    }, true);
    this.copyChanged = true;
    this.follower?.snap();
    if (entry.kind === "ban") this.banInForce(prefix);
  }

  remove(kind: ListKind, prefix: Prefix, now: number, reason?: string): void {
    this.index.apply(
      { kind, prefix, op: "remove", createdAt: now, expiresAt: null, node: this.options.node, check: null, reason: null },
      true,
    );
    this.copyChanged = true;
    this.follower?.snap();
    this.enqueue(op("list_changes", {
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
    this.enqueue(op("greylist", { ...row, node: this.options.node }));
  }

  /** `writer`'s own total for one slot of a fleet-wide counter; a later total for the same slot replaces it. */
  writeCount(name: string, key: string, slot: number, count: number, writer: string): void {
    this.enqueue(op("counters", { name, key, slot, node: writer, count }));
  }

  /**
   * `listener` hears of every ban put in force in this node's memory, made here or read from the
   * database (another node, the CLI, the API), as it is applied: the gate ends the live sessions
   * it covers. It may hear of a prefix more than once.
   */
  onBanInForce(listener: (prefix: Prefix) => void): void {
    this.banListeners.push(listener);
  }

  /** A listener's failure is its own: the ban is in force and the rest of the store's work goes on. */
  private banInForce(prefix: Prefix): void {
    for (const listener of this.banListeners) {
      try {
        listener(prefix);
      } catch (error) {
        this.onError(
          new Error(
            `ending the connections a new ban covers failed (a bug of ours, please report it): ${(error as Error)?.stack ?? error}`,
          ),
        );
      }
    }
  }

  /** `listener` hears when a ban or allow change made here has reached the database (passes are too many to tell). */
  onListWritten(listener: () => void): void {
    this.listWriteListeners.push(listener);
  }

  recordEvent(event: EventWrite): void {
    this.enqueue(op("events", {
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
  async list(kind: ListKind, now: number): Promise<ListRow[]> {
    const rows: ListRow[] = [];
    for (let after = 0;;) {
      const page = await this.db.selectFrom("lists").selectAll().select(sql<number>`rowid`.as("rowid"))
        .where("kind", "=", kind).where(sql<number>`rowid`, ">", after).orderBy(sql`rowid`).limit(LIST_PAGE).execute();
      for (const { rowid: _, ...row } of page) if (row.op === "set" && (row.expires_at === null || row.expires_at > now)) rows.push(row);
      if (page.length < LIST_PAGE) break;
      after = page[page.length - 1].rowid;
    }
    return rows.sort((x, y) => x.created_at - y.created_at || x.seq - y.seq);
  }

  /**
   * When each entry in force ends (null: never), by prefix, read in pages of three narrow
   * columns as one JSON text each: what an import compares its lines with, far cheaper than
   * list() at a million entries.
   */
  async expiries(kind: ListKind, now: number): Promise<Map<string, number | null>> {
    const inForce = new Map<string, number | null>();
    for (let after = 0;;) {
      const page = await this.client.execute({
        sql: `SELECT max(rowid), json_group_array(json_array(prefix, op, expires_at))
              FROM (SELECT rowid, prefix, op, expires_at FROM lists WHERE kind = ? AND rowid > ? ORDER BY rowid LIMIT ${PAGE})`,
        args: [kind, after],
      });
      const rows = JSON.parse(page.rows[0][1] as string) as [string, "set" | "remove", number | null][];
      for (const [prefix, op, expiresAt] of rows) {
        if (op === "set" && (expiresAt === null || expiresAt > now)) inForce.set(prefix, expiresAt);
      }
      if (rows.length < PAGE) break;
      after = Number(page.rows[0][0]);
    }
    return inForce;
  }

  /** The entries of one list in force in this node's memory: what the admin side shows while the database is away. */
  entries(kind: ListKind, now: number): ListEntry[] {
    return [...this.index.entries(kind, now)].sort((a, b) => a.createdAt - b.createdAt);
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

  /**
   * Follows changes made by other nodes, the CLI and the API at the pace of `pace` (slower
   * while nothing changes), beats the node's heartbeat, and takes its turn at housekeeping.
   */
  follow(pace: FollowOptions, info: NodeInfo): void {
    this.follower ??= new Follower(new FollowPace(pace.fastMs, pace.idleMs), () => this.poll(info), () => this.readNudged());
  }

  /** Reads the change log now rather than at the next turn of the pace (a nudge from the node that made a change). */
  wake(): void {
    this.follower?.wake();
  }

  /**
   * The change log read beside a turn under way, after a nudge: only while following as usual
   * (reconnecting, and reloading a log trimmed past this node, are the turns' to do), and a
   * failure is left for the next turn to notice and report.
   */
  private async readNudged(): Promise<boolean> {
    if (this.followFailing || this.listsFrom !== "database") return false;
    try {
      await this.catchUp(false);
      return true;
    } catch {
      return false;
    }
  }

  /** One turn of following; resolves to how many changes it applied. */
  private async poll(info: NodeInfo): Promise<number> {
    // While the database is away it is tried once every RETRY_MS, whatever the idle pace
    // (each try waits at most its deadline); a turn in between reads nothing and keeps the
    // pace fast, so the return is noticed within a second.
    if (this.followFailing && Date.now() < this.retryAt) return 1;
    const reconnecting = this.listsFrom !== "database";
    let changes = 0;
    try {
      // An embedded replica follows the change log from its primary (one small request, with
      // the deadline, as a node over HTTP does): its file takes the primary's frames only every
      // replicaSyncMs, and libsql's sync thread says nothing when the primary is away.
      if (reconnecting) await this.connect();
      else changes = await this.catchUp();
      this.lastContact = Date.now();
      if (reconnecting) {
        this.onError(
          new Error(
            `store reached at ${this.options.url}: caught up, ${this.inForceTotal()} list entries in force; writes made meanwhile follow from the queue`,
          ),
        );
      } else if (this.followFailing) this.onError(new Error(`store reachable again at ${this.options.url}`));
      this.followFailing = false;
      this.followError = undefined;
      const now = Date.now();
      if (now >= this.nextBeatAt) {
        this.nextBeatAt = now + HEARTBEAT_MS;
        this.sweep(now);
        await this.saveCopy(now);
        await this.beat(info);
      }
    } catch (error) {
      if (!this.followFailing) {
        this.onError(
          new Error(`cannot follow the store at ${this.options.url}, screening with what this node has: ${(error as Error).message}`),
        );
      }
      this.followFailing = true;
      this.followError = (error as Error).message;
      this.retryAt = Date.now() + RETRY_MS;
      return 1;
    }
    const now = Date.now();
    if (this.options.retention && now >= this.nextHousekeepingAt) {
      this.nextHousekeepingAt = now + HOUSEKEEPING_EVERY_MS;
      await this.housekeep(this.options.retention, now);
    }
    return changes;
  }

  private async housekeep(retention: Retention, now: number): Promise<void> {
    try {
      const round = await housekeep(this.client, this.options.node, retention, now);
      if (round) this.sizes = round.sizes;
    } catch (error) {
      this.onError(
        new Error(
          `housekeeping of the store at ${this.options.url} failed, tried again in ${HOUSEKEEPING_EVERY_MS / 60_000} minutes: ${
            (error as Error).message
          }`,
        ),
      );
    }
  }

  /** Waits until every write made so far has reached the database; false if `timeoutMs` passed first. */
  flush(timeoutMs = 10_000): Promise<boolean> {
    return this.queue.flush(timeoutMs);
  }

  async close(timeoutMs = 5_000): Promise<void> {
    this.follower?.stop();
    await this.saveCopy(Date.now(), true);
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
          this.onError(
            new Error(
              `cannot checkpoint the store at ${this.options.url} before closing, its -wal file keeps the latest writes: ${
                (error as Error).message
              }`,
            ),
          )
        );
    }
    await this.db.destroy();
    this.client.close();
    this.primary?.close();
  }

  private inForceTotal(): number {
    return this.index.size("ban") + this.index.size("pass") + this.index.size("allow");
  }

  /**
   * Writes the local copy when the lists changed, at most every COPY_EVERY_MS unless `atOnce`
   * (the lists just read whole, a clean stop): a copy a little behind costs a restart during an
   * outage only the others' latest changes (this node's own wait in the journal, read at start).
   */
  private async saveCopy(now: number, atOnce = false): Promise<void> {
    // One copy at a time: they share the temporary file.
    while (this.copying) await this.copying;
    if (this.copy === undefined || !this.copyChanged || (!atOnce && now - this.copiedAt < COPY_EVERY_MS)) return;
    const index = this.index;
    // Changes made while it is written (it yields to the event loop between megabytes) mark it changed again.
    this.copyChanged = false;
    this.copying = this.copy.write(
      (function* () {
        for (const kind of ["ban", "pass", "allow"] as const) yield* index.entries(kind, now);
      })(),
      now,
    ).finally(() => this.copying = undefined);
    try {
      await this.copying;
    } catch (error) {
      this.copyChanged = true;
      if (!this.copyFailing) {
        this.onError(
          new Error(
            `cannot write the local copy of the lists ${this.copy.path} (${
              (error as Error).message
            }): a restart while the database is away would start from an older copy; tried again at the next change`,
          ),
        );
      }
      this.copyFailing = true;
      return;
    }
    if (this.copyFailing) this.onError(new Error(`local copy of the lists ${this.copy.path} written again`));
    this.copyFailing = false;
    this.copiedAt = now;
  }

  /** Forgets entries that expired: they already stopped applying at their time; this frees their memory. */
  private sweep(now: number): void {
    this.index.sweep(now, now - REMOVAL_KEPT_MS, SWEEP_SLOTS);
  }

  /**
   * A heartbeat that cannot be written (a full disk under a `file:` database) is not a store
   * out of reach: the lists are still read, so it is logged once on its own.
   */
  private async beat(info: NodeInfo): Promise<void> {
    let sizes;
    try {
      sizes = await this.writeBeat(info);
    } catch (error) {
      // No answer at all is the database away, not a disk that refuses the heartbeat.
      if (error instanceof DeadlineError) throw error;
      if (!this.beatFailing) {
        this.onError(
          new Error(
            `cannot write this node's heartbeat to the store at ${this.options.url}, still screening and following: ${
              (error as Error).message
            }`,
          ),
        );
      }
      this.beatFailing = true;
      return;
    }
    if (this.beatFailing) this.onError(new Error(`heartbeat written to the store at ${this.options.url} again`));
    this.beatFailing = false;
    this.sizes = { ...this.sizes, ...sizes };
  }

  /** The heartbeat, with this node's read position, and the housekeeper's marks read in the same request. */
  private async writeBeat(info: NodeInfo) {
    const now = Date.now();
    const [, marks] = await this.client.batch([
      {
        sql: `INSERT INTO nodes (name, runtime, listen, started_at, last_seen, read_seq, admin_url) VALUES (?, ?, ?, ?, ?, ?, ?)
              ON CONFLICT (name) DO UPDATE SET runtime = excluded.runtime, listen = excluded.listen, started_at = excluded.started_at,
              last_seen = excluded.last_seen, read_seq = excluded.read_seq, admin_url = excluded.admin_url`,
        args: [this.options.node, info.runtime, info.listen, info.startedAt, now, this.lastSeq, info.adminUrl ?? null],
      },
      { sql: "SELECT name, value FROM store_marks WHERE name LIKE 'rows:%'", args: [] },
    ], "write");
    return readSizes(marks.rows as unknown as { name: unknown; value: unknown }[]);
  }

  /**
   * One INSERT for a run of rows of one table, its rows as one JSON text that SQLite unpacks
   * (json_each): one value crosses into the client's native code instead of one per column and
   * row (its conversions showed in a perf profile of the store's writes), and one text is one
   * statement to prepare whatever the row count. The statement is built once, from our own
   * column list, never from a row's keys.
   */
  private insertRows(table: WriteOp["table"], rows: readonly WriteOp[], opIds: boolean): { sql: string; args: string[] } {
    const columns = columnsOf(table);
    let sql = this.statements.get(table);
    if (sql === undefined) {
      const named = [...columns, "op_id"];
      // `where true`: SQLite would read the ON of the upsert as a join's otherwise. `order by
      // key`: rows take their seqs in the batch's order (a set and a remove of one prefix in one
      // millisecond are told apart by seq), which SQLite's scan of json_each does not promise.
      sql = `insert into "${table}" (${named.map((column) => `"${column}"`).join(", ")}) select ${
        named.map((_, i) => `value ->> ${i}`).join(", ")
      } from json_each(?) where true order by key on conflict ("op_id") do nothing`;
      this.statements.set(table, sql);
    }
    return { sql, args: [JSON.stringify(rows.map((o) => [...columns.map((column) => o.row[column] ?? null), opIds ? o.id : null]))] };
  }

  /**
   * An upsert that only moves forward, so a greylist write replayed late cannot undo a newer
   * state; each change takes the next seq, which the other nodes follow.
   */
  private greylistUpsert(o: WriteOp): { sql: string; args: (string | number | null)[] } {
    return {
      sql:
        `insert into "greylist" ("triplet", "first_seen", "passed_at", "expires_at", "node", "seq") values (?, ?, ?, ?, ?, ${
          TAKEN_SEQ("greylist")
        }) ` +
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
    if (this.detached) {
      throw new Error(
        `the primary at ${this.options.syncUrl} has not answered since start: writes wait until the embedded replica is attached to it`,
      );
    }
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
      for (let i = 0; i < run.length; i += ROWS_PER_INSERT) {
        statements.push(this.insertRows(table, run.slice(i, i + ROWS_PER_INSERT), opIds));
      }
    }
    await whileBusy(() => this.client.batch(statements, "write"));
    this.lastContact = Date.now();
    if (ops.some((o) => o.table === "list_changes" && o.row.kind !== "pass")) {
      for (const listener of this.listWriteListeners) {
        listener();
      }
    }
  }

  /**
   * Loads the lists in force (removals' versions included) from `lists`, after noting where the
   * change log stands: a change made while the pages are read is applied again by following,
   * which is harmless. Returns how many rows it applied.
   */
  private async load(): Promise<number> {
    const now = Date.now();
    // Two statements, not a read batch: a read transaction's commit on a file that another
    // node is migrating can stay busy on its connection for good (measured on Deno).
    const top = await this.client.execute("SELECT coalesce(max(seq), 0) FROM list_changes");
    const count = await this.client.execute("SELECT count(*) FROM lists");
    const from = Number(top.rows[0][0]);
    this.index.reserve(this.index.size("ban") + this.index.size("pass") + this.index.size("allow") + Number(count.rows[0][0]));
    let applied = 0;
    let pages = 0;
    for (let after = 0;;) {
      // By rowid alone: a condition on expires_at lets SQLite pick lists_by_expiry and sort
      // every page again (quadratic, measured).
      const page = await this.client.execute({
        sql: `SELECT max(rowid), ${pageJson("rowid")} FROM (SELECT rowid, * FROM lists WHERE rowid > ? ORDER BY rowid LIMIT ${PAGE})`,
        args: [after],
      });
      const rows = JSON.parse(page.rows[0][1] as string) as ChangeJson[];
      for (const row of rows) {
        const expired = row[2] === "set" && row[4] !== null && row[4] <= now;
        if (!expired && this.apply(row)) applied++;
      }
      if (++pages % COLLECT_EVERY_PAGES === 0) this.options.memory?.collect();
      if (rows.length < PAGE) break;
      await nextTurn();
      after = Number(page.rows[0][0]);
    }
    this.lastSeq = Math.max(this.lastSeq, from);
    if (pages >= COLLECT_EVERY_PAGES) this.options.memory?.collect();
    return applied;
  }

  /**
   * Applies the changes after the last one read; returns how many. A node that fell behind the
   * trimmed part of the log (away longer than the fleet waited for it) reloads the lists in force
   * instead (unless `reload` is false: then it throws): the changes it missed are gone, and
   * `lists` says where they led.
   */
  private async catchUp(reload = true): Promise<number> {
    let applied = 0;
    for (;;) {
      // One statement, not a batch: an idle read is what a fleet pays for most.
      const page = await this.changes.execute({
        sql: `SELECT max(seq), ${pageJson("seq")}, (SELECT value FROM store_marks WHERE name = ?)
              FROM (SELECT * FROM list_changes WHERE seq > ? ORDER BY seq LIMIT ${PAGE})`,
        args: [TRIMMED_BELOW, this.lastSeq],
      });
      if (Number(page.rows[0][2] ?? 0) > this.lastSeq + 1) {
        if (!reload) throw new Error(`the change log was trimmed past seq ${this.lastSeq}: the lists must be read again`);
        // An embedded replica loads from its file, which must first hold what the primary's log was trimmed to.
        if (this.options.syncUrl) await this.replicaCaughtUp();
        return applied + await this.load();
      }
      // In seq order, which decides between changes made at the same millisecond; SQLite does
      // not promise an aggregate's order, and sqld parses no ORDER BY inside one.
      const rows = (JSON.parse(page.rows[0][1] as string) as ChangeJson[]).sort((x, y) => x[8] - y[8]);
      for (const row of rows) if (this.apply(row)) applied++;
      if (rows.length > 0) this.lastSeq = Math.max(this.lastSeq, Number(page.rows[0][0]));
      if (rows.length < PAGE) return applied;
      await nextTurn();
    }
  }

  private apply([kind, text, op, createdAt, expiresAt, node, check, reason]: ChangeJson): boolean {
    const prefix = parsePrefix(text);
    if (!prefix) return false;
    const applied = this.index.apply({ kind, prefix, op, createdAt, expiresAt, node, check, reason });
    if (applied) this.copyChanged = true;
    if (applied && kind === "ban" && op === "set" && (expiresAt === null || expiresAt > Date.now())) this.banInForce(prefix);
    return applied;
  }
}

/**
 * The follow loop: one turn at a time, the next one after the pace's wait, or at once after a
 * `wake()`. A wake during a turn reads the change log beside it at once (`readBeside`): the
 * turn may have read before the change was written, or be busy with the heartbeat, the local
 * copy or the housekeeping, and waiting for it put whole round trips on a nudged ban
 * (bench/propagation.ts). `readBeside` resolves to false when it could not read (the turn
 * after this one then reads again).
 */
class Follower {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private dueAt = 0;
  private running: Promise<void> | undefined;
  private beside: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    private readonly pace: FollowPace,
    private readonly read: () => Promise<number>,
    private readonly readBeside: () => Promise<boolean>,
  ) {
    this.schedule(pace.current);
  }

  wake(): void {
    this.pace.snap();
    if (!this.running) return this.turn();
    if (this.beside) {
      this.again = true;
      return;
    }
    this.beside = this.readBeside().then((read) => {
      this.beside = undefined;
      if (read) return;
      if (this.running) this.again = true;
      else this.schedule(0);
    });
  }

  /** A local write: keep up with the changes likely to follow it. */
  snap(): void {
    const wait = this.pace.snap();
    if (!this.running && this.dueAt > Date.now() + wait) this.schedule(wait);
  }

  /** No read after this one; one under way is not waited for (it may wait on the network). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(waitMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.dueAt = Date.now() + waitMs;
    this.timer = setTimeout(() => this.turn(), waitMs);
  }

  private turn(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.again = false;
    this.running = this.read().then((changes) => {
      this.running = undefined;
      if (this.again) this.turn();
      else this.schedule(this.pace.afterRead(changes));
    });
  }
}

/** What the index needs of a change this node wrote, read back from its journal. */
type ListChangeWrite = Pick<ListChangeRow, "kind" | "prefix" | "op" | "created_at" | "expires_at" | "node" | "check_id" | "reason">;

/**
 * An embedded replica syncs on libsql's own thread every replicaSyncMs: a sync() called from
 * here runs on the event loop and holds it for the whole transfer (bench/replica-sync.ts: 320 to
 * 430 ms for a change of 100,000 rows; every connection waits meanwhile), and the background one
 * neither holds it nor blocks the replica's local reads, even while its primary drops packets
 * (measured on both runtimes). The start and a reconnection never call it either: they load the
 * file as it is and read the rest of the change log from the primary (loadReplica).
 */
function openClient(options: StoreOptions, timeoutMs: number): Client {
  return createClient({
    url: options.url,
    authToken: options.authToken,
    syncUrl: options.syncUrl,
    syncInterval: options.syncUrl === undefined ? undefined : (options.replicaSyncMs ?? REPLICA_SYNC_MS) / 1000,
    fetch: abortingFetch(timeoutMs),
  });
}

/** MXSCREEN_REPLICA_SYNC_INTERVAL's default: each sync is two requests (a handshake and the frames), idle or not. */
const REPLICA_SYNC_MS = 5_000;
/** How long an embedded replica may take to catch up with its primary when it connects, in MXSCREEN_DB_TIMEOUTs. */
const REPLICA_CATCH_UP_TIMEOUTS = 10;
/** How often the replica's file is looked at meanwhile (a local read: a fraction of a millisecond). */
const REPLICA_LOOK_MS = 20;

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

/**
 * A page of `lists` or `list_changes` rows as one JSON text: each value read through the
 * client costs about a microsecond on Deno (its native addon), nine per row; one text per page
 * loads a million entries in about a second on both runtimes (measured).
 */
const pageJson = (order: string) =>
  `json_group_array(json_array(kind, prefix, op, created_at, expires_at, node, check_id, reason, ${order}))`;
type ChangeJson = [ListKind, string, "set" | "remove", number, number | null, string, string | null, string | null, number];

/** Rows per INSERT: a text of a few hundred kilobytes at most, well below what sqld takes in one request. */
const ROWS_PER_INSERT = 1_000;

function op(table: WriteOp["table"], row: WriteOp["row"]): WriteOp {
  return { id: nextOpId(), table, row };
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
  throw damagedFile(file, problems);
}

function damagedFile(file: string, problems: readonly string[]): Error {
  const shown = problems.slice(0, 3).map((problem) => problem.replace(/\s+/g, " ").slice(0, 300)).join("; ");
  return new Error(
    `the database file ${file} is damaged (quick_check: ${shown}), so mxscreen does not start on a list it cannot trust. ` +
      `Restore a backup, or recover it with: sqlite3 ${file} .recover | sqlite3 recovered.db, and point MXSCREEN_DB_URL at recovered.db`,
  );
}
