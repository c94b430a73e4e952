import { basename, join } from "node:path";
import type postgres from "postgres";
import type { Sql } from "./db";
import { ConfigError, errorMessage } from "../errors";
import { isPermissionDenied } from "./permission_denied";

export interface Migration {
  /** File name without .sql, e.g. 0001_dead_letters; applied in this order. */
  version: string;
  sql: string;
}

const MIGRATIONS_DIR = join(import.meta.dir, "..", "..", "migrations");
// Any fixed 64-bit number shared by every migrator; pg_advisory_xact_lock releases it at commit.
const MIGRATION_LOCK_ID = 0x65746c5f6d6967n;

/** The migration versions in `dir` (file names without .sql), in the order they apply. */
export function migrationVersions(dir = MIGRATIONS_DIR): string[] {
  return [...new Bun.Glob("*.sql").scanSync({ cwd: dir })].map((file) => basename(file, ".sql")).sort();
}

export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  return Promise.all(migrationVersions(dir).map(async (version) => ({ version, sql: await Bun.file(join(dir, `${version}.sql`)).text() })));
}

/**
 * Applies the migrations not yet recorded in etl_schema_migrations, all in one transaction under
 * an advisory lock, so twenty pods starting together apply each migration exactly once.
 * Returns the versions it applied (none when the schema is current). Checking needs only SELECT
 * on etl_schema_migrations; applying needs the owner of the platform's tables. A role refused
 * that (a job's role, README "Privileges") gets a configuration error naming what is pending:
 * the job does not run on a schema older than its code.
 */
export async function migrate(sql: Sql, migrations: Migration[]): Promise<string[]> {
  const pending = await pendingMigrations(sql, migrations);
  if (pending.length === 0) return [];
  try {
    return await applyMigrations(sql, migrations);
  } catch (error) {
    if (!isPermissionDenied(error)) throw error;
    throw new ConfigError(
      `${pending.length} migration(s) pending (${pending.map((m) => m.version).join(", ")}) and this role may not apply them (${errorMessage(error)}): ` +
        "run `etl migrate` as the owner of the platform's tables (README.md \"Privileges\")",
      { cause: error },
    );
  }
}

async function applyMigrations(sql: Sql, migrations: Migration[]): Promise<string[]> {
  return sql.begin(async (tx) => {
    // A migration may take longer than the pool's statement_timeout, and so may the wait for the lock.
    await tx`set local statement_timeout = 0`;
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_ID.toString()}::bigint)`;
    await tx`
      create table if not exists etl_schema_migrations (
        version text primary key,
        applied_at timestamptz not null default now()
      )`;
    const pending = await pendingMigrations(tx, migrations);
    for (const migration of pending) {
      await tx.unsafe(migration.sql);
      await tx`insert into etl_schema_migrations (version) values (${migration.version})`;
    }
    return pending.map((m) => m.version);
  });
}

export async function pendingMigrations(sql: Sql | postgres.TransactionSql, migrations: Migration[]): Promise<Migration[]> {
  const [row] = await sql`select to_regclass('etl_schema_migrations') is not null as exists`;
  if (!row?.exists) return migrations;
  const applied = new Set((await sql`select version from etl_schema_migrations`).map((r) => r.version as string));
  return migrations.filter((m) => !applied.has(m.version));
}
