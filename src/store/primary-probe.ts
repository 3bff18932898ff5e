/**
 * Whether the primary of an embedded replica answers HTTP at all within `ms`. Opening a
 * replica syncs inside the client's constructor, in native code that holds the whole event
 * loop until the primary answers (for ever, on a link that drops packets), so a node asks
 * first and, without an answer, reads the replica's file on its own until the primary is back.
 */
export async function primaryAnswers(syncUrl: string, ms: number): Promise<boolean> {
  const url = new URL("/health", syncUrl.replace(/^libsql:/, "https:").replace(/^ws(s?):/, "http$1:"));
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(ms) });
    await response.body?.cancel();
    return true;
  } catch {
    return false;
  }
}
