/** Where log lines go: `line` queues one, `flush` writes what is queued at once (at exit). */
export interface LineSink {
  line(text: string): void;
  flush(): void;
}

/** Past this many characters queued, they are written at once: a turn's lines stay a modest write. */
const MOST_PENDING = 64 * 1024;

/**
 * Log lines gathered over one turn of the event loop and handed to `write` as one text, in the
 * order they came: each console.log is a call into the runtime and a write(2) of its own, 16 % of
 * the accept loop's thread under a pregreet flood (bench profile, Bun), and a turn that concludes
 * many sessions logs a line for each. `later` runs the flush after the turn's callbacks
 * (setImmediate); whoever ends the process calls `flush` first, so no line is lost at exit.
 */
export function batchedLines(write: (text: string) => void, later: (flush: () => void) => void = setImmediate): LineSink {
  let pending = "";
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending === "") return;
    const text = pending;
    pending = "";
    write(text);
  };
  return {
    line(text) {
      pending = pending === "" ? text : `${pending}\n${text}`;
      if (pending.length >= MOST_PENDING) return flush();
      if (scheduled) return;
      scheduled = true;
      later(flush);
    },
    flush,
  };
}
