import type { Sql } from "../core/db/db";

/**
 * The health of the database the job is connected to, from PostgreSQL's statistics views, with
 * the figures of prometheus-community/postgres_exporter where the two overlap (its collector/
 * pg_database.go, pg_stat_user_tables.go, pg_stat_activity.go, pg_locks.go and
 * pg_database_wraparound.go, and the older cmd/postgres_exporter/queries.go), so a dashboard built
 * on the exporter reads these too. Unlike the exporter, only the connected database is measured.
 *
 * No superuser: sizes, table statistics and locks are visible to any role that may connect. Of
 * other roles' sessions pg_stat_activity shows only the pid, role, database and application
 * without pg_read_all_stats (granted by pg_monitor): their state, transaction and query start,
 * and query text read null. Those sessions are counted apart (`hiddenSessions`).
 */
export class DbHealthRepository {
  constructor(private readonly sql: Sql) {}

  /** Those of `schemas` the database does not have. */
  async missingSchemas(schemas: readonly string[]): Promise<string[]> {
    const rows = await this.sql<Array<{ name: string }>>`
      select name from unnest(${schemas as string[]}::text[]) as s(name)
      where not exists (select 1 from pg_namespace where nspname = s.name)`;
    return rows.map((row) => row.name);
  }

  /** pg_database_size_bytes and the wraparound ages of pg_database_wraparound (in transaction ids). */
  async database(): Promise<DatabaseFigures> {
    const [row] = await this.sql<DatabaseFigures[]>`
      select datname, pg_database_size(oid)::float8 as "sizeBytes",
             age(datfrozenxid)::float8 as "frozenXidAge", mxid_age(datminmxid)::float8 as "minMultixactAge"
      from pg_database where datname = current_database()`;
    return row!;
  }

  /**
   * pg_stat_user_tables for the tables of `schemas` and the platform's etl_* tables (in the schema
   * its migrations create them in, the first of the search path). The last (auto)vacuum and
   * analyze are Unix seconds, 0 for never, as the exporter gives them; sizes are pg_table_size
   * (heap and TOAST) and pg_indexes_size, its table_size_bytes and index_size_bytes.
   */
  async tables(schemas: readonly string[]): Promise<TableFigures[]> {
    return this.sql<TableFigures[]>`
      select schemaname, relname,
             n_live_tup::float8 as "liveTuples", n_dead_tup::float8 as "deadTuples",
             coalesce(extract(epoch from last_vacuum), 0)::float8 as "lastVacuum",
             coalesce(extract(epoch from last_autovacuum), 0)::float8 as "lastAutovacuum",
             coalesce(extract(epoch from last_analyze), 0)::float8 as "lastAnalyze",
             coalesce(extract(epoch from last_autoanalyze), 0)::float8 as "lastAutoanalyze",
             pg_table_size(relid)::float8 as "tableSizeBytes", pg_indexes_size(relid)::float8 as "indexSizeBytes"
      from pg_stat_user_tables
      where schemaname = any(${schemas as string[]}::text[])
         or (schemaname = current_schema() and relname like 'etl\\_%')
      order by schemaname, relname`;
  }

  /**
   * pg_stat_activity_count and pg_stat_activity_max_tx_duration: sessions of this database but
   * this one by state, every state of the exporter's list present (0 when none), the longest
   * transaction in each in seconds. The exporter's newer collector also labels them by role,
   * application, backend type and wait event; summed by (datname, state) it gives these. Sessions whose state this role cannot see (their type, state and times read
   * null, their query `<insufficient privilege>`) are counted in `hiddenSessions`.
   */
  async activity(): Promise<{ byState: ActivityByState[]; hiddenSessions: number }> {
    const byState = await this.sql<ActivityByState[]>`
      select s.state, count(a.pid)::float8 as count,
             coalesce(max(extract(epoch from now() - a.xact_start)), 0)::float8 as "maxTxDurationSeconds"
      from (values ('active'), ('idle'), ('idle in transaction'), ('idle in transaction (aborted)'),
                   ('fastpath function call'), ('disabled')) as s(state)
      left join pg_stat_activity a on a.state = s.state and a.datname = current_database() and a.pid <> pg_backend_pid()
      group by s.state order by s.state`;
    const [hidden] = await this.sql<Array<{ count: number }>>`
      select count(*)::float8 as count from pg_stat_activity
      where datname = current_database() and query = '<insufficient privilege>'`;
    return { byState, hiddenSessions: hidden!.count };
  }

  /**
   * pg_locks_count: locks held or awaited in this database by mode, the exporter's modes (0 when
   * none). And the locks waited for by this database's sessions, with the longest wait: a row lock
   * is waited for as the holder's transaction id, a lock with no database, so those are found
   * through the waiting session rather than pg_locks.database.
   */
  async locks(): Promise<{ byMode: LocksByMode[]; waiting: WaitingLocks[] }> {
    const byMode = await this.sql<LocksByMode[]>`
      select m.mode, count(l.locktype)::float8 as count
      from (values ('accesssharelock'), ('rowsharelock'), ('rowexclusivelock'), ('shareupdateexclusivelock'), ('sharelock'),
                   ('sharerowexclusivelock'), ('exclusivelock'), ('accessexclusivelock'), ('sireadlock')) as m(mode)
      left join pg_locks l on lower(l.mode) = m.mode and l.database = (select oid from pg_database where datname = current_database())
      group by m.mode order by m.mode`;
    const waiting = await this.sql<WaitingLocks[]>`
      select lower(l.mode) as mode, count(*)::float8 as count,
             coalesce(max(extract(epoch from now() - l.waitstart)), 0)::float8 as "longestWaitSeconds"
      from pg_locks l join pg_stat_activity a on a.pid = l.pid
      where not l.granted and a.datname = current_database()
      group by lower(l.mode) order by 1`;
    return { byMode, waiting };
  }

  /**
   * The client session of this database (other than this one) running the longest query, and the
   * one in the longest transaction, each with what identifies it. The query text is null without
   * pg_read_all_stats for another role's session.
   */
  async longest(): Promise<{ query: SessionFigures | undefined; transaction: SessionFigures | undefined }> {
    const sessions = (order: "query_start" | "xact_start") => this.sql<SessionFigures[]>`
      select pid, usename as "role", application_name as "applicationName", state,
             wait_event_type as "waitEventType", wait_event as "waitEvent",
             extract(epoch from now() - ${this.sql(order)})::float8 as seconds, query
      from pg_stat_activity
      where datname = current_database() and backend_type = 'client backend' and pid <> pg_backend_pid()
        and ${this.sql(order)} is not null ${order === "query_start" ? this.sql`and state = 'active'` : this.sql``}
      order by ${this.sql(order)} limit 1`;
    const [[query], [transaction]] = [await sessions("query_start"), await sessions("xact_start")];
    return { query, transaction };
  }
}

export interface DatabaseFigures {
  datname: string;
  sizeBytes: number;
  /** age(datfrozenxid): transaction ids since the oldest unfrozen one; PostgreSQL stops taking writes near 2^31. */
  frozenXidAge: number;
  minMultixactAge: number;
}

export interface TableFigures {
  schemaname: string;
  relname: string;
  liveTuples: number;
  deadTuples: number;
  lastVacuum: number;
  lastAutovacuum: number;
  lastAnalyze: number;
  lastAutoanalyze: number;
  tableSizeBytes: number;
  indexSizeBytes: number;
}

export interface ActivityByState {
  state: string;
  count: number;
  maxTxDurationSeconds: number;
}

export interface LocksByMode {
  mode: string;
  count: number;
}

export interface WaitingLocks {
  mode: string;
  count: number;
  longestWaitSeconds: number;
}

export interface SessionFigures {
  pid: number;
  role: string | null;
  applicationName: string | null;
  state: string | null;
  waitEventType: string | null;
  waitEvent: string | null;
  seconds: number;
  query: string | null;
}
