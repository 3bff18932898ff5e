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

type Calls = Pick<Client, "execute" | "batch" | "executeMultiple" | "migrate" | "transaction" | "sync">;

/**
 * The client `current()` returns (an embedded replica's changes once its primary is back), with
 * a deadline on every call, transactions' statements included. Kysely, the migrations, the queue
 * and the follower all go through it, so none of them can hang on the network. The replica's
 * sync runs in native code that cannot be aborted: while one has not ended, the next waits for
 * it rather than starting another, so a dead link does not pile them up.
 *
 * An embedded replica's sync is worse: it blocks the whole event loop in native code until the
 * primary answers, which no deadline can interrupt. `beforeRemote` asks the primary first,
 * asynchronously, and refuses the sync when it does not answer. Its writes, passed through to
 * the primary by the replica, would block the same way (for seconds while the primary is busy
 * with another node's import, measured): with `primary` (a client of the primary over HTTP)
 * they go to it instead, as ordinary requests, and come back into the replica's file with its
 * next sync. Reads (SELECT, read batches) stay local and are never held up.
 */
export function withDeadlines(current: () => Client, ms: number, url: string, beforeRemote?: () => Promise<void>, primary?: Client): Client {
  const what = `the database at ${url}`;
  let syncing: ReturnType<Client["sync"]> | undefined;
  const remote = async <T>(call: (client: Client) => Promise<T>): Promise<T> => {
    if (primary) return withDeadline(call(primary), ms, what);
    if (beforeRemote) await beforeRemote();
    return withDeadline(call(current()), ms, what);
  };
  const calls: Calls = {
    execute: ((statement: string | { sql: string }, args?: never) => {
      const sql = typeof statement === "string" ? statement : statement.sql;
      return /^\s*select\b/i.test(sql) ? withDeadline(current().execute(statement as never, args), ms, what) : remote((client) => client.execute(statement as never, args));
    }) as Client["execute"],
    batch: (statements, mode) => mode === "read" ? withDeadline(current().batch(statements, mode), ms, what) : remote((client) => client.batch(statements, mode)),
    executeMultiple: (sql) => remote((client) => client.executeMultiple(sql)),
    migrate: (statements) => remote((client) => client.migrate(statements)),
    transaction: (async (mode?: never) => transactionWithDeadlines(await remote((client) => client.transaction(mode)), ms, what)) as Client["transaction"],
    sync: () =>
      syncing ??= (async () => {
        if (beforeRemote) await beforeRemote();
        return withDeadline(current().sync(), ms, what);
      })().finally(() => syncing = undefined),
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
