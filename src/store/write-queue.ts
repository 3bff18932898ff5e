import { appendFileSync, existsSync, mkdirSync, readFileSync, truncateSync } from "node:fs";
import { dirname } from "node:path";

/** One write to the shared database, as data, so that it can wait on disk for the database. */
export interface WriteOp {
  readonly id: string;
  readonly table: "list_changes" | "events" | "greylist";
  readonly row: Readonly<Record<string, string | number | null>>;
}

export interface QueueState {
  readonly length: number;
  readonly reachable: boolean;
  readonly lastError: string | undefined;
}

const BATCH = 200;
const MAX_BACKOFF_MS = 5_000;

/**
 * Writes in order, never lost: each op is appended to a journal file before it is tried,
 * applied in batches, retried with backoff while the database is away, and the journal is
 * emptied only when nothing is pending. At start the journal's ops are replayed; the
 * database ignores the ones it already has (unique op ids).
 */
export class WriteQueue {
  private readonly pending: WriteOp[] = [];
  private running = false;
  private reachable = true;
  private lastError: string | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private drained: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly journal: string | undefined,
    private readonly apply: (ops: readonly WriteOp[]) => Promise<void>,
    private readonly onError: (error: Error) => void,
  ) {
    if (journal === undefined) return;
    mkdirSync(dirname(journal), { recursive: true });
    if (!existsSync(journal)) return;
    for (const line of readFileSync(journal, "utf8").split("\n")) {
      if (line.trim() === "") continue;
      try {
        this.pending.push(JSON.parse(line) as WriteOp);
      } catch {
        onError(new Error(`store queue ${journal}: skipped a line that is not JSON (a write cut short by a crash)`));
      }
    }
  }

  get state(): QueueState {
    return { length: this.pending.length, reachable: this.reachable, lastError: this.lastError };
  }

  push(op: WriteOp): void {
    if (this.journal !== undefined) appendFileSync(this.journal, JSON.stringify(op) + "\n");
    this.pending.push(op);
    this.kick(0);
  }

  /** Starts writing what the journal held from an earlier run. */
  start(): void {
    this.kick(0);
  }

  /** Resolves true once nothing is pending, false if `timeoutMs` passes first. */
  flush(timeoutMs: number): Promise<boolean> {
    if (this.pending.length === 0 && !this.running) return Promise.resolve(true);
    this.kick(0);
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
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  private kick(delayMs: number): void {
    if (this.running || this.closed || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.run();
    }, delayMs);
  }

  private async run(): Promise<void> {
    this.running = true;
    let backoff = 0;
    while (this.pending.length > 0 && !this.closed) {
      const batch = this.pending.slice(0, BATCH);
      try {
        await this.apply(batch);
        this.pending.splice(0, batch.length);
        if (!this.reachable) this.onError(new Error(`store reachable again: writing ${this.pending.length + batch.length} queued writes`));
        this.reachable = true;
        this.lastError = undefined;
        backoff = 0;
      } catch (error) {
        const message = (error as Error).message;
        if (this.reachable) {
          this.onError(new Error(`store write failed, keeping ${this.pending.length} writes queued${this.journal ? ` in ${this.journal}` : ""} and retrying: ${message}`));
        }
        this.reachable = false;
        this.lastError = message;
        backoff = Math.min(MAX_BACKOFF_MS, Math.max(250, backoff * 2));
        await new Promise((resolve) => setTimeout(resolve, backoff));
      }
    }
    this.running = false;
    if (this.pending.length === 0) {
      if (this.journal !== undefined && existsSync(this.journal)) truncateSync(this.journal, 0);
      for (const wake of this.drained.splice(0)) wake();
    }
  }
}
