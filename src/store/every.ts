/** How often a node reads the greylist triplets, counts and admin URLs the other nodes wrote. */
export const FOLLOW_TABLES_MS = 5_000;

/**
 * Runs `read` now and then every `everyMs`, one run at a time, for the tables a node follows
 * beside the lists (greylist triplets, fleet counters, the other nodes' admin URLs). A failure
 * is reported once until a run succeeds again: the node goes on with what it holds.
 */
export class Every {
  private timer: ReturnType<typeof setInterval> | undefined;
  private running: Promise<void> | undefined;
  private failing = false;

  constructor(
    private readonly what: string,
    private readonly everyMs: number,
    private readonly read: () => Promise<void>,
    private readonly onError: (error: Error) => void,
  ) {}

  /**
   * The first run, awaited, then the others on the timer. A first run that fails is reported
   * like any other: a node that starts while the database is away goes on with what it holds.
   */
  async start(): Promise<void> {
    await this.run();
    this.timer ??= setInterval(() => void this.run(), this.everyMs);
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private run(): Promise<void> {
    this.running ??= this.read().then(
      () => {
        if (this.failing) this.onError(new Error(`${this.what}: the store answers again`));
        this.failing = false;
      },
      (error) => {
        if (!this.failing) this.onError(new Error(`${this.what} failed, going on with what this node holds: ${(error as Error).message}`));
        this.failing = true;
      },
    ).finally(() => this.running = undefined);
    return this.running;
  }
}
