import postgres from "postgres";
import { ConfigError, TransientError, errorMessage } from "./errors";
import { retry } from "./retry";

export type Sql = postgres.Sql;

export interface Database {
  sql: Sql;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  applicationName: string;
  signal?: AbortSignal;
  /** Pool size; the job's concurrency decides how many queries can be in flight. */
  max?: number;
}

/**
 * Connects to `url` (postgres://… or embedded:<data dir>) and proves the connection with one
 * query, retrying while the server is unreachable. Bad credentials or a missing database are
 * configuration errors; a server that stays down is transient (exit 75).
 */
export async function openDatabase(url: string, options: OpenDatabaseOptions): Promise<Database> {
  let stopEmbedded: (() => Promise<void>) | undefined;
  if (url.startsWith("embedded:")) {
    const { startEmbeddedPostgres } = await import("./embedded_postgres");
    const server = await startEmbeddedPostgres(url.slice("embedded:".length));
    url = server.url;
    stopEmbedded = server.stop;
  }
  const sql = postgres(url, {
    max: options.max ?? 10,
    connect_timeout: 10,
    idle_timeout: 30,
    onnotice: () => {},
    connection: { application_name: options.applicationName },
  });
  const close = async () => {
    await sql.end({ timeout: 5 });
    await stopEmbedded?.();
  };
  try {
    await retry(() => sql`select 1`, { attempts: 5, baseDelayMs: 500, signal: options.signal });
  } catch (error) {
    await close().catch(() => undefined);
    throw classifyConnectError(error, url);
  }
  return { sql, close };
}

function classifyConnectError(error: unknown, url: string): Error {
  const code = (error as { code?: string }).code;
  const where = describeUrl(url);
  if (code === "28P01" || code === "28000") return new ConfigError(`database ${where} rejected the credentials in DATABASE_URL`, { cause: error });
  if (code === "3D000") return new ConfigError(`database ${where} does not exist (DATABASE_URL)`, { cause: error });
  if (error instanceof Error && error.name === "AbortError") return error;
  return new TransientError(`database ${where} unreachable: ${errorMessage(error)}`, { cause: error });
}

/** host:port/database, never the user or password. */
function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return "(DATABASE_URL)";
  }
}
