import type { Client, Transaction } from "@libsql/client";

/** A call to the database that got no answer in time: a link that drops packets looks like this. */
export class DeadlineError extends Error {}

/** `promise`, or a DeadlineError naming `what` once `ms` have passed without an answer. */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`no answer from ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * The fetch the HTTP client (sqld, Turso) uses: each request is aborted at the deadline, so
 * a connect stuck in SYN retries or a request whose answer never comes frees its socket and
 * its slot in the client's 20 concurrent requests instead of waiting on the kernel.
 */
export function abortingFetch(ms: number): (request: Request) => Promise<Response> {
  // A little after the call's own deadline, so the error the caller sees is that deadline's.
  return (request) => fetch(request, { signal: AbortSignal.timeout(ms + ABORT_AFTER_MS) });
}

const ABORT_AFTER_MS = 250;

type Calls = Pick<Client, "execute" | "batch" | "executeMultiple" | "migrate" | "transaction">;

/**
 * The client `current()` returns (an embedded replica's changes once its primary is back), with
 * a deadline on every call, transactions' statements included. Kysely, the migrations, the queue
 * and the follower all go through it, so none of them can hang on the network.
 *
 * An embedded replica's writes, passed through to the primary by the replica, would block the
 * whole event loop in native code until the primary answers (for seconds while it is busy with
 * another node's import, measured), which no deadline can interrupt: with `primary` (a client
 * of the primary over HTTP) they go to it instead, as ordinary requests, and come back into the
 * replica's file with its background sync. Reads (SELECT, read batches) stay local and are
 * never held up. Nothing here calls the replica's `sync()`, which blocks the same way.
 */
export function withDeadlines(current: () => Client, ms: number, url: string, primary?: Client): Client {
  const what = `the database at ${url}`;
  const remote = <T>(call: (client: Client) => Promise<T>): Promise<T> => withDeadline(call(primary ?? current()), ms, what);
  const calls: Calls = {
    execute: ((statement: string | { sql: string }, args?: never) => {
      const sql = typeof statement === "string" ? statement : statement.sql;
      return /^\s*select\b/i.test(sql)
        ? withDeadline(current().execute(statement as never, args), ms, what)
        : remote((client) => client.execute(statement as never, args));
    }) as Client["execute"],
    batch: (statements, mode) =>
      mode === "read" ? withDeadline(current().batch(statements, mode), ms, what) : remote((client) => client.batch(statements, mode)),
    executeMultiple: (sql) => remote((client) => client.executeMultiple(sql)),
    migrate: (statements) => remote((client) => client.migrate(statements)),
    transaction: (async (mode?: never) => transactionWithDeadlines(await remote((client) => client.transaction(mode)), ms, what)) as Client[
      "transaction"
    ],
  };
  return new Proxy(current(), {
    get(_, key) {
      if (Object.hasOwn(calls, key)) return calls[key as keyof Calls];
      const target = current();
      const value = Reflect.get(target, key);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function transactionWithDeadlines(transaction: Transaction, ms: number, what: string): Transaction {
  const calls: Pick<Transaction, "execute" | "batch" | "executeMultiple" | "commit" | "rollback"> = {
    execute: (statement) => withDeadline(transaction.execute(statement), ms, what),
    batch: (statements) => withDeadline(transaction.batch(statements), ms, what),
    executeMultiple: (sql) => withDeadline(transaction.executeMultiple(sql), ms, what),
    commit: () => withDeadline(transaction.commit(), ms, what),
    rollback: () => withDeadline(transaction.rollback(), ms, what),
  };
  return new Proxy(transaction, {
    get(target, key, receiver) {
      if (Object.hasOwn(calls, key)) return calls[key as keyof typeof calls];
      const value = Reflect.get(target, key, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
