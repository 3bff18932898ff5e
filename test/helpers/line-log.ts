/**
 * The lines a process has written, split from chunks as they arrive, and waits for a line that
 * matches: for log assertions on mxscreen and on the real parts it talks to.
 */
export class LineLog {
  readonly lines: string[] = [];
  private partial = "";
  private readonly waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];

  /** `context()` is added to a timeout's error: what else the process said. */
  constructor(private readonly name: string, private readonly context: () => string = () => "") {}

  /** A chunk of output; a line is complete at its LF. */
  write(chunk: string): void {
    const parts = (this.partial + chunk).split("\n");
    this.partial = parts.pop()!;
    for (const line of parts) {
      this.lines.push(line);
      for (const waiter of this.waiters.filter((w) => w.pattern.test(line))) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  }

  /** Resolves with the first line, present or future, matching `pattern`. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<string> {
    const found = this.lines.find((line) => pattern.test(line));
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = { pattern, resolve: (line: string) => (clearTimeout(timer), resolve(line)) };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(
          new Error(`no ${this.name} line matching ${pattern} within ${timeoutMs} ms; so far:\n${this.lines.join("\n")}${this.context()}`),
        );
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }
}
