/**
 * Whether this process is under stress: so many connections open that the greet wait is cut
 * short (postscreen's `postscreen_greet_wait = ${stress?{2}:{6}}s`) to free slots sooner. It
 * ends only below four fifths of the threshold, so a load hovering at it does not flap.
 */
export class Stress {
  private on = false;

  constructor(private readonly threshold: number) {}

  /** The new state when `open` connections change it; undefined when it stays. */
  update(open: number): boolean | undefined {
    if (!this.on && open >= this.threshold) return (this.on = true);
    if (this.on && open < Math.floor(this.threshold * 0.8)) return (this.on = false);
    return undefined;
  }

  get active(): boolean {
    return this.on;
  }
}
