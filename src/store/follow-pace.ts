/**
 * Reads that stay at the fast pace after a change was found or this node wrote one, however
 * little they find: the others' answers to a change (the passes of a sibling process ending its
 * sessions at the same moment, its write waiting on the file's lock) land a few hundred
 * milliseconds apart, and a wait that had doubled meanwhile put a second on them (CI: 10 of 40
 * clients that had passed on one process were made to wait again by the other).
 */
const FAST_READS_AFTER_CHANGE = 4;

/**
 * How long a node waits before it next reads the change log: `fastMs` after a change was found
 * or this node wrote one (and for the next FAST_READS_AFTER_CHANGE reads), then twice as long
 * after each read that found nothing, up to `idleMs`. An idle fleet pays for a few reads a
 * minute, not four a second; a busy one follows at the fast pace. A nudge (`wake`) reads at
 * once whatever the pace.
 */
export class FollowPace {
  private waitMs: number;
  private fastReadsLeft = FAST_READS_AFTER_CHANGE;

  constructor(private readonly fastMs: number, private readonly idleMs: number) {
    this.waitMs = fastMs;
  }

  /** The wait after a read that found `changes` changes. */
  afterRead(changes: number): number {
    if (changes > 0) return this.snap();
    if (this.fastReadsLeft > 0) this.fastReadsLeft--;
    else this.waitMs = Math.min(this.idleMs, this.waitMs * 2);
    return this.waitMs;
  }

  /** Back to the fast pace (a local write: more changes are likely to follow). */
  snap(): number {
    this.waitMs = this.fastMs;
    this.fastReadsLeft = FAST_READS_AFTER_CHANGE;
    return this.waitMs;
  }

  get current(): number {
    return this.waitMs;
  }
}
