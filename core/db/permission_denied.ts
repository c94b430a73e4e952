import { ConfigError, EtlError } from "../errors";

/**
 * A database role refused a privilege (SQLSTATE 42501, insufficient_privilege): only a grant can
 * help, so the run exits 2, naming what was refused. db_metrics run by a role with CONNECT and
 * pg_monitor only met "permission denied for table etl_schema_migrations" in the run ledger,
 * which reported it as transient (exit 75): Kubernetes retried the pod until the Job's deadline.
 */
export const INSUFFICIENT_PRIVILEGE = "42501";

/** Whether `error`, or an error it wraps, is PostgreSQL's permission denial. */
export function isPermissionDenied(error: unknown): boolean {
  return deniedQuery(error) !== undefined;
}

/**
 * The configuration error that says what `role` was refused: PostgreSQL's own message (it names
 * the table, schema or sequence), the kind of statement refused and where the grants are.
 * Undefined when `error` is no permission denial, or is one already explained.
 */
export function permissionDenial(error: unknown, role: string | undefined): ConfigError | undefined {
  if (error instanceof EtlError && (error.code === "config" || error.code === "usage")) return undefined;
  const denied = deniedQuery(error);
  if (!denied) return undefined;
  const statement = statementKind(denied.query);
  return new ConfigError(
    `${denied.message} (SQLSTATE ${INSUFFICIENT_PRIVILEGE})${role ? ` for role "${role}"` : ""}${statement ? `, refusing ${statement}` : ""}: ` +
      `grant the role what README.md "Privileges" lists for this job`,
    { cause: error },
  );
}

function deniedQuery(error: unknown): { message: string; query?: string } | undefined {
  for (let e = error, depth = 0; e && typeof e === "object" && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const candidate = e as { code?: unknown; message?: unknown; query?: unknown };
    if (candidate.code === INSUFFICIENT_PRIVILEGE) {
      return { message: String(candidate.message), query: typeof candidate.query === "string" ? candidate.query : undefined };
    }
  }
  return undefined;
}

/** "an UPDATE", "a SELECT": the statement's first keyword (postgres.js keeps the statement on its errors). */
function statementKind(query: string | undefined): string | undefined {
  const keyword = query?.trim().match(/^(select|insert|update|delete|analyze|create|alter|lock|truncate)\b/i)?.[1];
  if (!keyword) return undefined;
  const upper = keyword.toUpperCase();
  // An upsert needs INSERT and UPDATE (and SELECT on what it compares) even when nothing conflicts.
  const kind = upper === "INSERT" && /\bon\s+conflict\b[\s\S]*\bdo\s+update\b/i.test(query!) ? "INSERT ... ON CONFLICT DO UPDATE" : upper;
  return `${/^[AEIOU]/.test(kind) ? "an" : "a"} ${kind}`;
}
