import type { DnsAnswer, DnsClient, DnsType } from "./types.ts";

/** The longest any answer is kept, whatever its TTL says. */
const MAX_AGE_MS = 60_000;
/**
 * How long an answer whose TTL node:dns does not report is kept (MX, PTR, and "no such name",
 * whose negative TTL is the zone's SOA minimum): short, since the zone's own TTL is unknown.
 */
const UNKNOWN_TTL_MS = 30_000;
/** Answers kept per session runner at most (about 200 bytes each); past it the oldest go first. */
const MAX_ENTRIES = 10_000;

interface Entry {
  readonly answer: Promise<DnsAnswer>;
  /** When the answer stops being good (Date.now()); Infinity while it is on its way. */
  expires: number;
}

/**
 * The session runner's recent answers, for the sessions after it: the same senders come back
 * again and again (a sender pool, a list server, a known client), and a clean session asks
 * five questions (the client's PTR, its HELO name, the sender domain's MX, A and AAAA), each a
 * socket write and read and a wakeup of the event loop. An answer is kept for its TTL where DNS
 * gives one (A, AAAA), else for UNKNOWN_TTL_MS, never beyond MAX_AGE_MS; a failure (timeout,
 * SERVFAIL) is never kept, so the next session asks again. Questions asked while the same one is
 * on its way share its answer.
 */
export function cachingDnsClient(inner: DnsClient, now: () => number = Date.now): DnsClient {
  const entries = new Map<string, Entry>();
  return {
    query(name: string, type: DnsType): Promise<DnsAnswer> {
      const key = `${type} ${name.toLowerCase()}`;
      const at = now();
      const known = entries.get(key);
      if (known !== undefined && known.expires > at) return known.answer;
      if (known !== undefined) entries.delete(key);
      const entry: Entry = { answer: inner.query(name, type), expires: Infinity };
      entries.set(key, entry);
      if (entries.size > MAX_ENTRIES) entries.delete(entries.keys().next().value!);
      void entry.answer.then((answer) => {
        const keep = keptFor(type, answer);
        if (keep > 0) entry.expires = now() + keep;
        else if (entries.get(key) === entry) entries.delete(key);
      }, () => entries.get(key) === entry && entries.delete(key));
      return entry.answer;
    },
  };
}

/** How long `answer` may be given again, in ms; 0: not at all. */
function keptFor(type: DnsType, answer: DnsAnswer): number {
  if (answer.status === "error") return 0;
  if (answer.status === "ok" && (type === "A" || type === "AAAA")) return Math.min(answer.ttl * 1000, MAX_AGE_MS);
  return UNKNOWN_TTL_MS;
}
