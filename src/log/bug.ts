/**
 * A broken invariant of ours, as log fields: its message and the first frames of its stack, on
 * one line, so that it can be reported and fixed. Used wherever an error reaches us unhandled.
 */
export function bugFields(error: unknown): { reason: string; stack: string | undefined } {
  const e = error instanceof Error ? error : new Error(String(error));
  return { reason: e.message, stack: e.stack?.split("\n").slice(1, 8).map((line) => line.trim()).join(" | ") };
}
