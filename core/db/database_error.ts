/**
 * Whether an error came from the database rather than from the work around it. A processor that
 * records a failed item per error must not record these: the item was fine, and the run lost its
 * database (exit 75) or its role lacks a grant (exit 2). decrypt_files did: a terminated backend
 * under the statement recording a decrypted message ("read ECONNRESET", or "write
 * CONNECTION_CLOSED") gave the message a dead letter and the run exit 3.
 */
const DATABASE_ERROR = Symbol.for("etl.databaseError");
// The codes postgres.js gives the errors of a connection it lost, closed or could not open.
const DRIVER_CONNECTION_CODES = new Set(["CONNECTION_CLOSED", "CONNECTION_ENDED", "CONNECTION_DESTROYED", "CONNECT_TIMEOUT"]);

/** Marks `error` as the database's: every query of a job's pool rejects through this (core/db/query_deadline.ts). */
export function markDatabaseError<E>(error: E): E {
  if (error && typeof error === "object" && Object.isExtensible(error) && !(DATABASE_ERROR in error)) Object.defineProperty(error, DATABASE_ERROR, { value: true });
  return error;
}

/**
 * Marked, or (for a query outside a job's pool) recognisably PostgreSQL's or the driver's:
 * postgres.js sets `query` on the socket errors it rejects a query in flight with, but not on
 * those of a connection it could not open (ECONNREFUSED, or ECONNRESET at connect).
 */
export function isDatabaseError(error: unknown): boolean {
  for (let e = error, depth = 0; e && typeof e === "object" && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const candidate = e as { [DATABASE_ERROR]?: true; name?: unknown; code?: unknown; query?: unknown };
    if (candidate[DATABASE_ERROR] || candidate.name === "PostgresError" || typeof candidate.query === "string") return true;
    if (typeof candidate.code === "string" && DRIVER_CONNECTION_CODES.has(candidate.code)) return true;
  }
  return false;
}
