import postgres from "postgres";
import { describeUrl } from "../config";
import { ConfigError, TransientError, errorMessage } from "../errors";
import { withQueryDeadline } from "./query_deadline";
import { retry } from "../http/retry";

export type Sql = postgres.Sql;

export interface Database {
  /** Every query it runs has a deadline (core/db/query_deadline.ts). */
  sql: Sql;
  /** The same pool without the deadline, for work that may rightly wait long (migrations under their lock). */
  unguarded: Sql;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  applicationName: string;
  signal?: AbortSignal;
  /** Pool size; the job's concurrency decides how many queries can be in flight. */
  max?: number;
  /** Longest a statement may run (server side); the client gives up up to 5 s later. */
  statementTimeoutMs?: number;
}

/**
 * Connects to `url` (postgres://… or embedded:<data dir>) and proves the connection with one
 * query, retrying while the server is unreachable. Bad credentials or a missing database are
 * configuration errors; a server that stays down is transient (exit 75).
 */
export async function openDatabase(url: string, options: OpenDatabaseOptions): Promise<Database> {
  if (url.startsWith("embedded:")) {
    // Shared by every process naming the same directory; it outlives this one (core/db/embedded_postgres.ts).
    const { connectEmbeddedPostgres } = await import("./embedded_postgres");
    url = await connectEmbeddedPostgres(url.slice("embedded:".length));
  }
  const statementTimeoutMs = options.statementTimeoutMs ?? 30_000;
  const unguarded = postgres(url, {
    max: options.max ?? 10,
    // Bounds what a query deadline cannot: a server or network that takes no new connection.
    connect_timeout: 5,
    idle_timeout: 30,
    // TCP keepalive after 5 s idle: a cut network under an idle pooled connection closes it.
    keep_alive: 5,
    onnotice: () => {},
    connection: { application_name: options.applicationName, statement_timeout: statementTimeoutMs },
  });
  const sql = withQueryDeadline(unguarded, statementTimeoutMs + Math.min(5_000, statementTimeoutMs));
  const close = async () => {
    // After a lost connection postgres.js never clears its query in flight, so end() always
    // waits out its timeout: keep it short.
    await unguarded.end({ timeout: 2 });
  };
  try {
    await retry(() => sql`select 1`, { attempts: 5, baseDelayMs: 500, signal: options.signal });
  } catch (error) {
    await close().catch(() => undefined);
    throw classifyConnectError(error, url);
  }
  return { sql, unguarded, close };
}

function classifyConnectError(error: unknown, url: string): Error {
  const code = (error as { code?: string }).code;
  const where = describeUrl(url);
  if (code === "28P01" || code === "28000") return new ConfigError(`database ${where} rejected the credentials in DATABASE_URL`, { cause: error });
  if (code === "3D000") return new ConfigError(`database ${where} does not exist (DATABASE_URL)`, { cause: error });
  if (error instanceof Error && error.name === "AbortError") return error;
  return new TransientError(`database ${where} unreachable: ${errorMessage(error)}`, { cause: error });
}
