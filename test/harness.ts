/** A minimal test registry that runs unchanged on Deno and Bun (their own runners differ). */

export interface TestCase {
  readonly name: string;
  readonly file: string;
  readonly timeoutMs: number;
  /** Run on this runtime only: for a test of something the other runtime's run would only repeat (the Bun-built binary). */
  readonly runsOn?: "deno" | "bun";
  /**
   * Never beside another test marked so, in any suite on this machine (the Deno and the Bun
   * suites run side by side): for a test that loads the machine and bounds a latency.
   */
  readonly alone?: boolean;
  readonly fn: () => unknown | Promise<unknown>;
}

const registry: TestCase[] = [];
let currentFile = "";

export function setCurrentFile(file: string): void {
  currentFile = file;
}

export function test(
  name: string,
  fn: () => unknown | Promise<unknown>,
  options: { timeoutMs?: number; runsOn?: "deno" | "bun"; alone?: boolean } = {},
): void {
  registry.push({ name, file: currentFile, timeoutMs: options.timeoutMs ?? 10_000, runsOn: options.runsOn, alone: options.alone, fn });
}

export function registered(): readonly TestCase[] {
  return registry;
}

/** Cleanups registered by a test run after it, pass or fail, in reverse order. */
const cleanups: (() => unknown | Promise<unknown>)[] = [];

export function onCleanup(fn: () => unknown | Promise<unknown>): void {
  cleanups.push(fn);
}

export async function runCleanups(): Promise<void> {
  while (cleanups.length > 0) {
    try {
      await cleanups.pop()!();
    } catch (error) {
      console.error(`cleanup failed: ${(error as Error).message}`);
    }
  }
}
