/** SQLite answers SQLITE_BUSY at once while another connection or process holds the write lock. */
export function isBusy(error: unknown): boolean {
  const e = error as { code?: string; message?: string; cause?: unknown } | undefined;
  return e?.code === "SQLITE_BUSY" || /SQLITE_BUSY|database is locked/.test(e?.message ?? "") ||
    (e?.cause !== undefined && e.cause !== error && isBusy(e.cause));
}

/** Retries `operation` while the database is busy, with growing pauses, for up to `limitMs`. */
export async function whileBusy<T>(operation: () => Promise<T>, limitMs = 10_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (let pause = 10;; pause = Math.min(pause * 2, 250)) {
    try {
      return await operation();
    } catch (error) {
      if (!isBusy(error) || Date.now() + pause > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, pause + Math.random() * pause));
    }
  }
}
