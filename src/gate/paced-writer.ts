import type { ClientSocket } from "../net/types.ts";

type Step =
  | { readonly kind: "write"; readonly text: string }
  | { readonly kind: "pause"; readonly ms: number }
  /** Something that must happen after what was written before it (close, STARTTLS). */
  | { readonly kind: "then"; readonly action: () => void };

/**
 * A session's writes to its client, in order, with the pauses of paced replies (stutter,
 * tarpit) kept here in the I/O layer: whatever the session says during a pause is written after
 * it. `holding` tells whether bytes the client sends now arrived before a final line.
 */
export class PacedWriter {
  private readonly steps: Step[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly socket: ClientSocket) {}

  /** A pause is under way: a final line is not written yet. */
  get holding(): boolean {
    return this.timer !== undefined;
  }

  /** Writes `text`; with `pause`, then waits `pause.ms` and writes `pause.final`. */
  write(text: string, pause?: { readonly ms: number; readonly final: string }): void {
    if (text !== "") this.steps.push({ kind: "write", text });
    if (pause !== undefined) {
      if (pause.ms > 0) this.steps.push({ kind: "pause", ms: pause.ms });
      this.steps.push({ kind: "write", text: pause.final });
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
      if (step.kind === "write") this.socket.write(step.text);
      else if (step.kind === "then") step.action();
      else {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.run();
        }, step.ms);
      }
    }
  }
}
