import type { ClientSocket } from "../net/types.ts";

type Step =
  /** `final`: the last line of a paced reply. */
  | { readonly kind: "write"; readonly text: string; readonly final?: true }
  | { readonly kind: "pause"; readonly ms: number }
  /** Something that must happen after what was written before it (close, STARTTLS). */
  | { readonly kind: "then"; readonly action: () => void };

/**
 * A session's writes to its client, in order, with the pauses of paced replies (stutter,
 * tarpit) kept here in the I/O layer: whatever the session says during a pause is written after
 * it. `finalsWritten`, given with what the client sends, tells the session whether it arrived
 * before a final line.
 */
export class PacedWriter {
  private readonly steps: Step[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private finals = 0;

  constructor(private readonly socket: ClientSocket) {}

  /** How many paced replies have had their final line written. */
  get finalsWritten(): number {
    return this.finals;
  }

  /** Writes `text`; with `pause`, then waits `pause.ms` and writes `pause.final`. */
  write(text: string, pause?: { readonly ms: number; readonly final: string }): void {
    if (text !== "") this.steps.push({ kind: "write", text });
    if (pause !== undefined) {
      if (pause.ms > 0) this.steps.push({ kind: "pause", ms: pause.ms });
      this.steps.push({ kind: "write", text: pause.final, final: true });
    }
    this.run();
  }

  /** Runs `action` once everything before it is written. */
  then(action: () => void): void {
    this.steps.push({ kind: "then", action });
    this.run();
  }

  /** The client is gone: nothing more is written. */
  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.steps.length = 0;
  }

  private run(): void {
    while (this.timer === undefined && this.steps.length > 0) {
      const step = this.steps.shift()!;
      if (step.kind === "write") {
        this.socket.write(step.text);
        if (step.final) this.finals++;
      } else if (step.kind === "then") step.action();
      else {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.run();
        }, step.ms);
      }
    }
  }
}
