/** A minimal test registry that runs unchanged on Deno and Bun (their own runners differ). */

export interface TestCase {
  readonly name: string;
  readonly file: string;
  readonly timeoutMs: number;
  /** Run on this runtime only: for a test of something the other runtime's run would only repeat (the Bun-built binary). */
  readonly runsOn?: "deno" | "bun";
  readonly fn: () => unknown | Promise<unknown>;
}

const registry: TestCase[] = [];
let currentFile = "";

export function setCurrentFile(file: string): void {
  currentFile = file;
}

export function test(name: string, fn: () => unknown | Promise<unknown>, options: { timeoutMs?: number; runsOn?: "deno" | "bun" } = {}): void {
  registry.push({ name, file: currentFile, timeoutMs: options.timeoutMs ?? 10_000, runsOn: options.runsOn, fn });
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
