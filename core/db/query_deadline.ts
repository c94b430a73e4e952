import type postgres from "postgres";
import { markDatabaseError } from "./database_error";
import { TransientError } from "../errors";

/**
 * A client-side deadline on every query a caller awaits. postgres.js has none: a query on a
 * connection that stays open but never answers (a frozen backend, a cut network) waits as long
 * as the fault lasts, and a query accepted by a connection whose socket just closed is never sent
 * and never settles (connection.js: execute() checks `terminated`, which closed() never sets;
 * measured with postgres 3.4.9 under Bun 1.4.4, and upstream issue #1208 on Node). Behind the
 * deadline a lost connection fails the query, transiently, instead of hanging the run.
 *
 * The query objects are returned themselves, patched, so fragments (sql`...` inside sql`...`)
 * stay lazy: only then/catch/finally, which make postgres.js send a query, start the clock.
 */
export class QueryDeadlineError extends TransientError {
  constructor(ms: number) {
    super(`the database did not answer within ${ms / 1000} s (connection lost or frozen)`);
    this.name = "QueryDeadlineError";
  }
}

const GUARDED = Symbol("deadline");

export function withQueryDeadline<T extends postgres.Sql<any>>(sql: T, ms: number): T {
  return new Proxy(sql, {
    apply: (target, self, args) => guardQuery(Reflect.apply(target as never, self, args), ms),
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (key === "unsafe" || key === "file") return (...args: unknown[]) => guardQuery((value as (...a: unknown[]) => unknown)(...args), ms);
      if (key === "begin") {
        // The transaction's queries get the deadline too; begin itself rejects when its connection closes.
        return (...args: unknown[]) => {
          const body = args.pop() as (tx: postgres.TransactionSql) => unknown;
          return (value as (...a: unknown[]) => unknown)(...args, (tx: postgres.TransactionSql) => body(withQueryDeadline(tx as never, ms)));
        };
      }
      return value;
    },
  });
}

function guardQuery<Q>(query: Q, ms: number): Q {
  const q = query as unknown as Promise<unknown> & { cancel?: () => unknown; [GUARDED]?: true };
  if (!(q instanceof Promise) || typeof q.cancel !== "function" || q[GUARDED]) return query;
  const then = q.then;
  let raced: Promise<unknown> | undefined;
  const start = () =>
    (raced ??= new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // Best effort: cancelling needs a new connection, which may not come either.
        Promise.resolve()
          .then(() => q.cancel!())
          .catch(() => undefined);
        reject(markDatabaseError(new QueryDeadlineError(ms)));
      }, ms);
      then.call(
        q,
        (value) => (clearTimeout(timer), resolve(value)),
        (error) => (clearTimeout(timer), reject(markDatabaseError(error))),
      );
    }));
  Object.defineProperties(q, {
    [GUARDED]: { value: true },
    then: { value: (onFulfilled?: never, onRejected?: never) => start().then(onFulfilled, onRejected) },
    catch: { value: (onRejected?: never) => start().catch(onRejected) },
    finally: { value: (onFinally?: never) => start().finally(onFinally) },
  });
  return query;
}

/**
 * The uncaught TypeError postgres.js throws from a setImmediate when it writes a query to a
 * connection whose socket is gone (connection.js nextWrite). No caller can catch it; the query
 * it belonged to fails at its deadline.
 */
export function isPostgresWriteToClosedSocket(error: unknown): boolean {
  return (
    error instanceof TypeError &&
    /socket\.write|reading 'write'/.test(error.message) &&
    /postgres[/\\](cjs[/\\])?src[/\\]connection\.js/.test(error.stack ?? "")
  );
}
