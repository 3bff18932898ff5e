import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import type { Logger } from "../log/logger.ts";
import { ownCommand } from "../net/runtime/which-runtime.ts";

/** A sibling that lived this long before it died is restarted at once; one dying sooner waits longer each time. */
const STEADY_MS = 60_000;
const FIRST_DELAY_MS = 1_000;
const MAX_DELAY_MS = 30_000;

interface Sibling {
  readonly index: number;
  child: ChildProcess | undefined;
  startedAt: number;
  delayMs: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * The other processes of MXSCREEN_PROCESSES, started by the first one: each is this same
 * program with MXSCREEN_PROCESS_INDEX set, listening on the same ports (SO_REUSEPORT), so one
 * box holds more connections than one process's open-files limit allows. A sibling that dies
 * is started again; each sibling leaves when its stdin (a pipe from us) closes, so none
 * outlives the first process, however it ended.
 */
export class Siblings {
  private readonly siblings: Sibling[];
  private stopping = false;

  constructor(count: number, private readonly logger: Logger) {
    this.siblings = Array.from(
      { length: count },
      (_, i) => ({ index: i + 1, child: undefined, startedAt: 0, delayMs: FIRST_DELAY_MS, timer: undefined }),
    );
  }

  start(): void {
    for (const sibling of this.siblings) this.spawn(sibling);
  }

  /** Siblings running now. */
  get running(): number {
    return this.siblings.filter((s) => s.child !== undefined).length;
  }

  /** Passes a signal on (SIGHUP: reload the TLS certificate). */
  signal(name: "SIGHUP"): void {
    for (const sibling of this.siblings) if (sibling.child?.pid !== undefined) process.kill(sibling.child.pid, name);
  }

  /** SIGTERM to each (they finish their sessions as the first process does); resolves when all have exited. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    const exits = this.siblings.map((sibling) => {
      clearTimeout(sibling.timer);
      const child = sibling.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      process.kill(child.pid!, "SIGTERM");
      const killer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, "SIGKILL"), timeoutMs);
      return exited.finally(() => clearTimeout(killer));
    });
    await Promise.all(exits);
  }

  private spawn(sibling: Sibling): void {
    const { command, args } = ownCommand();
    const child = spawn(command, args, {
      env: { ...process.env, MXSCREEN_PROCESS_INDEX: String(sibling.index) },
      stdio: ["pipe", "inherit", "inherit"],
    });
    sibling.child = child;
    sibling.startedAt = Date.now();
    child.on("error", (error) => this.logger.note("error", `cannot start process ${sibling.index}: ${error.message}`, { command }));
    child.on("exit", (code, signal) => {
      sibling.child = undefined;
      if (this.stopping) return;
      if (Date.now() - sibling.startedAt >= STEADY_MS) sibling.delayMs = FIRST_DELAY_MS;
      this.logger.note(
        "error",
        `process ${sibling.index} exited (${signal ?? `code ${code}`}): starting it again in ${sibling.delayMs} ms`,
        {
          process: sibling.index,
        },
      );
      sibling.timer = setTimeout(() => this.spawn(sibling), sibling.delayMs);
      sibling.delayMs = Math.min(sibling.delayMs * 2, MAX_DELAY_MS);
    });
  }
}
