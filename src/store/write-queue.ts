import { closeSync, existsSync, fchmodSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { checkJournalLine, type WriteOp } from "./journal-rows.ts";

export type { WriteOp } from "./journal-rows.ts";

export interface QueueState {
  readonly length: number;
  readonly reachable: boolean;
  readonly lastError: string | undefined;
  /** Writes waiting in memory only, because the journal could not take them (disk full, read-only). */
  readonly memoryOnly: number;
  /** Writes given up since start because more than the cap were waiting. */
  readonly dropped: number;
  /** Why the journal cannot be written now; undefined while it can. */
  readonly journalError: string | undefined;
}

export interface QueueLimits {
  /** Writes that may wait at most; past it the least important, oldest go first. */
  readonly cap?: number;
  /** How often a journal that failed is tried again. */
  readonly journalRetryMs?: number;
  /** The shortest time from one batch's start to the next one's. */
  readonly batchGapMs?: number;
  /** The same while only verdict events wait (no list change, greylist or counter). */
  readonly eventGapMs?: number;
}

const BATCH = 200;
const MAX_BACKOFF_MS = 5_000;
const CAP = 100_000;
const JOURNAL_RETRY_MS = 1_000;
/**
 * A write after a quiet spell goes out at once; a burst of them (a pregreet verdict is a ban and
 * an event) waits for the next batch at most this long. Every batch is a transaction with its
 * prepared statements and its commit: one per verdict cost more CPU than the verdict's own work
 * (bench profile), one per few milliseconds takes tens of rows each.
 */
const BATCH_GAP_MS = 10;
/**
 * Verdict events alone (a clean session's PTR note, one per session) wait for the next batch
 * longer: nothing is enforced from them, and one transaction per session, each with its commit
 * and fsync, cost a relayed session more CPU than its SMTP (bench profile). Once a batch is this
 * old, a busy node writes the events of a few hundred sessions in one; after a quiet spell an
 * event still goes at once.
 */
const EVENT_GAP_MS = 250;
/** Trimming goes this far below the cap, so it runs once per many writes rather than on each. */
const TRIM_TO = 0.9;
/** The journal holds what this node decided about clients: nobody else needs to read it. */
const FILE_MODE = 0o600;
const encoder = new TextEncoder();

/** What goes first when too many writes wait: verdict events and counts, then greylist, then passes; bans and allow entries last. */
function keepRank(op: WriteOp): number {
  if (op.table === "events" || op.table === "counters") return 0;
  if (op.table === "greylist") return 1;
  return op.row.kind === "pass" ? 2 : 3;
}

/** Writes that others act on (lists, greylist, counters): only verdict events may wait for the longer gap. */
function isUrgent(op: WriteOp): boolean {
  return op.table !== "events";
}

/**
 * Writes in order: each op is appended to a journal file before it is tried, applied in
 * batches, retried with backoff while the database is away, and the journal is emptied only
 * when nothing is pending. At start the journal's ops are replayed; the database ignores the
 * ones it already has (unique op ids). A journal that cannot be written (full or read-only
 * disk) never fails a write: the writes wait in memory, bounded by the cap, and go to the
 * journal again once it can take them.
 */
export class WriteQueue {
  private pending: WriteOp[] = [];
  private inflight: readonly WriteOp[] = [];
  /** Ops held in memory that the journal does not have, in the order they were pushed. */
  private readonly unjournaled = new Set<WriteOp>();
  private fd: number | undefined;
  /** Bytes of whole lines in the journal: a line cut short by a full disk is cut off again. */
  private journalBytes = 0;
  private journalError: string | undefined;
  private journalRetryAt = 0;
  /** A journal that could not be read is never opened for writing, so it is never emptied unread. */
  private journalUnread = false;
  private dropped = 0;
  private droppedThisEpisode = 0;
  private running = false;
  private reachable = true;
  private lastError: string | undefined;
  /** When the run already asked for starts (a microtask: now), so that a sooner need can replace a later one. */
  private kicked: { readonly at: number; readonly timer: ReturnType<typeof setTimeout> | undefined } | undefined;
  /** Something but verdict events waits (or may: a trimmed or failed batch leaves it set), so batches keep the short gap. */
  private urgent = false;
  private drained: (() => void)[] = [];
  private closed = false;
  private readonly cap: number;
  private readonly journalRetryMs: number;
  private readonly batchGapMs: number;
  private readonly eventGapMs: number;
  private lastBatchAt = -Infinity;

  constructor(
    private readonly journal: string | undefined,
    private readonly apply: (ops: readonly WriteOp[]) => Promise<void>,
    private readonly onError: (error: Error) => void,
    limits: QueueLimits = {},
  ) {
    this.cap = limits.cap ?? CAP;
    this.journalRetryMs = limits.journalRetryMs ?? JOURNAL_RETRY_MS;
    this.batchGapMs = limits.batchGapMs ?? BATCH_GAP_MS;
    this.eventGapMs = Math.max(this.batchGapMs, limits.eventGapMs ?? EVENT_GAP_MS);
    if (journal === undefined) return;
    try {
      mkdirSync(dirname(journal), { recursive: true });
      if (existsSync(journal)) this.replay(journal);
    } catch (error) {
      this.journalUnread = true;
      this.journalError = (error as Error).message;
      onError(
        new Error(
          `cannot read the store journal ${journal} (${this.journalError}): the writes it holds from an earlier run are not replayed, and it is left as it is; ` +
            `writes wait in memory only until a restart once it can be read and written`,
        ),
      );
      return;
    }
    this.openJournal();
  }

  get state(): QueueState {
    return {
      length: this.pending.length + this.inflight.length,
      reachable: this.reachable,
      lastError: this.lastError,
      memoryOnly: this.unjournaled.size,
      dropped: this.dropped,
      journalError: this.journalError,
    };
  }

  /** The writes not yet in the database, oldest first: at start, those the journal held from an earlier run. */
  waiting(): readonly WriteOp[] {
    return [...this.inflight, ...this.pending];
  }

  /** Never throws: a write the journal cannot take waits in memory. */
  push(op: WriteOp): void {
    this.pushAll([op]);
  }

  /** Writes made together (a verdict's ban and event rows): one append to the journal for all of them. */
  pushAll(ops: readonly WriteOp[]): void {
    if (ops.length === 0) return;
    this.pending.push(...ops);
    if (!this.urgent) this.urgent = ops.some(isUrgent);
    if (this.journal !== undefined) {
      for (const o of ops) this.unjournaled.add(o);
      this.writeJournal();
    }
    if (this.pending.length + this.inflight.length > this.cap) this.trim();
    this.kick(this.nextBatchAt());
  }

  /** Starts writing what the journal held from an earlier run. */
  start(): void {
    this.kick(performance.now());
  }

  /** Resolves true once nothing is pending, false if `timeoutMs` passes first. */
  flush(timeoutMs: number): Promise<boolean> {
    if (this.pending.length === 0 && !this.running) return Promise.resolve(true);
    this.kick(performance.now());
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.drained.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.kicked?.timer);
    this.kicked = undefined;
    if (this.fd !== undefined) {
      try {
        closeSync(this.fd);
      } catch {
        // Closing only releases the descriptor: what was written is already in the file.
      }
      this.fd = undefined;
    }
  }

  private replay(journal: string): void {
    const now = Date.now();
    const lines = readFileSync(journal, "utf8").split("\n");
    lines.forEach((line, index) => {
      if (line.trim() === "") return;
      const checked = checkJournalLine(line, now);
      if (checked.ok) this.pending.push(checked.op);
      else {
        const shown = line.length > 200 ? `${line.slice(0, 200)}…` : line;
        this.onError(new Error(`store journal ${journal} line ${index + 1} skipped, not applied: ${checked.error}: ${shown}`));
      }
    });
  }

  private openJournal(): void {
    try {
      const fd = openSync(this.journal!, "a", FILE_MODE);
      this.fd = fd;
      const stat = fstatSync(fd);
      // An existing journal keeps the mode it was created with (0666 by Deno before): narrow it.
      if ((stat.mode & 0o777) !== FILE_MODE) fchmodSync(fd, FILE_MODE);
      this.journalBytes = stat.size;
    } catch (error) {
      this.failJournal(error as Error);
    }
  }

  /** Appends every op the journal does not have yet, whole lines or nothing. */
  private writeJournal(): void {
    if (this.unjournaled.size === 0 || this.journalUnread) return;
    if (this.journalError !== undefined && Date.now() < this.journalRetryAt) return;
    if (this.fd === undefined) this.openJournal();
    if (this.fd === undefined) return;
    // While the journal is healthy only the ops just pushed are missing; after a failure, all of
    // them go, in push order, which is the set's order.
    const ops = [...this.unjournaled];
    const bytes = encoder.encode(ops.map((o) => JSON.stringify(o) + "\n").join(""));
    try {
      for (let written = 0; written < bytes.length;) written += writeSync(this.fd, bytes, written);
      this.journalBytes += bytes.length;
    } catch (error) {
      try {
        ftruncateSync(this.fd, this.journalBytes);
      } catch {
        // A journal that cannot even be cut back keeps a partial last line; replay skips it.
      }
      this.failJournal(error as Error);
      return;
    }
    this.unjournaled.clear();
    if (this.journalError !== undefined) {
      this.onError(new Error(`store journal ${this.journal} writable again: ${ops.length} writes held in memory are on disk again`));
      this.journalError = undefined;
    }
  }

  private failJournal(error: Error): void {
    this.journalRetryAt = Date.now() + this.journalRetryMs;
    if (this.journalError === undefined) {
      this.onError(
        new Error(
          `cannot write the store journal ${this.journal} (${error.message}): writes wait in memory (at most ${this.cap}, then the oldest events go first) ` +
            `and reach the database as usual; free space on its disk or make it writable: it is tried again with the next write, at most every ${
              this.journalRetryMs / 1000
            } s`,
        ),
      );
    }
    this.journalError = error.message;
  }

  /** Over the cap: drops the oldest writes of the least important kind first, down below the cap. */
  private trim(): void {
    let excess = this.pending.length + this.inflight.length - Math.floor(this.cap * TRIM_TO);
    const drop = new Set<WriteOp>();
    for (let rank = 0; rank <= 3 && excess > 0; rank++) {
      for (const o of this.pending) {
        if (excess === 0) break;
        if (keepRank(o) === rank) {
          drop.add(o);
          excess--;
        }
      }
    }
    if (drop.size === 0) return;
    this.pending = this.pending.filter((o) => !drop.has(o));
    for (const o of drop) this.unjournaled.delete(o);
    if (this.droppedThisEpisode === 0) {
      this.onError(
        new Error(
          `store queue over its cap of ${this.cap} writes (${this.lastError ? `database: ${this.lastError}` : "database slow"}${
            this.journalError ? `, journal: ${this.journalError}` : ""
          }): dropped the ${drop.size} oldest of the least important (events first; bans and allow entries last), and will go on doing so until it drains`,
        ),
      );
    }
    this.dropped += drop.size;
    this.droppedThisEpisode += drop.size;
  }

  /**
   * The earliest start of the next batch: the gap since the last one began, the longer one while
   * only events wait. On performance.now(), which never steps back: the wall clock set back by
   * NTP would hold every write for as long.
   */
  private nextBatchAt(): number {
    const urgent = this.urgent || this.drained.length > 0;
    return this.lastBatchAt + (urgent ? this.batchGapMs : this.eventGapMs);
  }

  /**
   * Starts writing at `at` (or at once, when that has passed), once the code that pushed is
   * done, so the writes of one verdict go in one batch: a microtask, not a timer, which waited
   * 1–3 ms (more on a loaded machine) before every ban reached the database and the other nodes
   * (bench/propagation.ts). A start already asked for at that time or sooner stands; a later
   * one (events waiting) gives way to a ban pushed meanwhile.
   */
  private kick(at: number): void {
    if (this.running || this.closed) return;
    const now = performance.now();
    const start = Math.max(now, at);
    if (this.kicked !== undefined && this.kicked.at <= start) return;
    if (this.kicked?.timer !== undefined) clearTimeout(this.kicked.timer);
    const go = () => {
      this.kicked = undefined;
      if (!this.closed) void this.run();
    };
    if (start <= now) {
      this.kicked = { at: now, timer: undefined };
      queueMicrotask(go);
    } else this.kicked = { at: start, timer: setTimeout(go, start - now) };
  }

  private async run(): Promise<void> {
    this.running = true;
    let backoff = 0;
    while (this.pending.length > 0 && !this.closed) {
      // Events that came while the last batch was written wait for their own gap.
      if (backoff === 0 && performance.now() < this.nextBatchAt()) break;
      this.lastBatchAt = performance.now();
      const batch = this.pending.splice(0, BATCH);
      this.urgent = this.pending.some(isUrgent);
      this.inflight = batch;
      try {
        await this.apply(batch);
        this.inflight = [];
        for (const o of batch) this.unjournaled.delete(o);
        if (!this.reachable) this.onError(new Error(`store reachable again: writing ${this.pending.length + batch.length} queued writes`));
        this.reachable = true;
        this.lastError = undefined;
        backoff = 0;
      } catch (error) {
        this.inflight = [];
        this.pending.unshift(...batch);
        if (!this.urgent) this.urgent = batch.some(isUrgent);
        const message = (error as Error).message;
        if (this.reachable) {
          this.onError(
            new Error(
              `store write failed, keeping ${this.pending.length} writes queued${
                this.journal ? ` in ${this.journal}` : ""
              } and retrying: ${message}`,
            ),
          );
        }
        this.reachable = false;
        this.lastError = message;
        backoff = Math.min(MAX_BACKOFF_MS, Math.max(250, backoff * 2));
        await new Promise((resolve) => setTimeout(resolve, backoff));
        this.writeJournal();
      }
    }
    this.running = false;
    if (this.pending.length === 0) this.drain();
    else this.kick(this.nextBatchAt());
  }

  /** Nothing waits any more: the journal is emptied and whoever flushed is told. */
  private drain(): void {
    if (this.fd !== undefined) {
      try {
        ftruncateSync(this.fd, 0);
        this.journalBytes = 0;
      } catch {
        // Left as it is, the journal replays writes the database has; their op ids make that harmless.
      }
    }
    if (this.droppedThisEpisode > 0) {
      this.onError(
        new Error(
          `store queue drained: ${this.droppedThisEpisode} writes were dropped while it was over its cap (${this.dropped} since start)`,
        ),
      );
      this.droppedThisEpisode = 0;
    }
    for (const wake of this.drained.splice(0)) wake();
  }
}
