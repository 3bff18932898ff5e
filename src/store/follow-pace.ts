/**
 * How long a node waits before it next reads the change log: `fastMs` after a change was found
 * or this node wrote one, then twice as long after each read that found nothing, up to
 * `idleMs`. An idle fleet pays for a few reads a minute, not four a second; a busy one follows
 * at the fast pace. A nudge (`wake`) reads at once whatever the pace.
 */
export class FollowPace {
  private waitMs: number;

  constructor(private readonly fastMs: number, private readonly idleMs: number) {
    this.waitMs = fastMs;
  }

  /** The wait after a read that found `changes` changes. */
  afterRead(changes: number): number {
    this.waitMs = changes > 0 ? this.fastMs : Math.min(this.idleMs, this.waitMs * 2);
    return this.waitMs;
  }

  /** Back to the fast pace (a local write: more changes are likely to follow). */
  snap(): number {
    this.waitMs = this.fastMs;
    return this.waitMs;
  }

  get current(): number {
    return this.waitMs;
  }
}
