import type { Counts } from "../../core/runtime/job";
import type { Logger } from "../../core/log";
import type { Metrics } from "../../core/metrics/metrics";
import type { DbHealthRepository, SessionFigures, TableFigures } from "../../repositories/db_health";

export interface DbMetricsOptions {
  health: DbHealthRepository;
  /** Application schemas whose tables are measured, besides the platform's etl_* tables. */
  schemas: readonly string[];
  metrics: Metrics;
  log: Logger;
}

// PostgreSQL refuses new transaction ids when age(datfrozenxid) nears 2^31 (its wraparound limit).
const WRAPAROUND_LIMIT = 2 ** 31;
// A statement's text is logged at most this long, literals masked (see queryShape).
const QUERY_CHARS = 300;

/**
 * Database size, per-table tuples, sizes and maintenance, sessions by state, locks, the longest
 * query and transaction, and the wraparound margin of the connected database: as gauges (named as
 * postgres_exporter names them where they overlap, etl_db_* where it has no equivalent), as one
 * `db_metrics.summary` event, and as the run's counts.
 */
export async function measureDatabase(options: DbMetricsOptions): Promise<Counts> {
  const { health, metrics, log } = options;
  const database = await health.database();
  const tables = await health.tables(options.schemas);
  const activity = await health.activity();
  const locks = await health.locks();
  const longest = await health.longest();
  const datname = database.datname;
  const db = { datname };

  metrics.gauge("pg_database_size_bytes", "Disk space used by the database", db, database.sizeBytes);
  metrics.gauge("pg_database_wraparound_age_datfrozenxid_seconds", "Age of the oldest transaction ID that has not been frozen.", db, database.frozenXidAge);
  metrics.gauge("pg_database_wraparound_age_datminmxid_seconds", "Age of the oldest multi-transaction ID that has been replaced with a transaction ID.", db, database.minMultixactAge);
  metrics.gauge("etl_db_wraparound_margin_xids", "Transaction IDs left before the wraparound limit: 2^31 - age(datfrozenxid)", db, WRAPAROUND_LIMIT - database.frozenXidAge);
  for (const table of tables) publishTableGauges(metrics, datname, table);
  for (const { state, count, maxTxDurationSeconds } of activity.byState) {
    metrics.gauge("pg_stat_activity_count", "number of connections in this state", { datname, state }, count);
    metrics.gauge("pg_stat_activity_max_tx_duration", "max duration in seconds any active transaction has been running", { datname, state }, maxTxDurationSeconds);
  }
  metrics.gauge("etl_db_hidden_sessions", "Client sessions whose state this role cannot read (it lacks pg_read_all_stats)", db, activity.hiddenSessions);
  for (const { mode, count } of locks.byMode) metrics.gauge("pg_locks_count", "Number of locks", { datname, mode }, count);
  const waitingLocks = locks.waiting.reduce((sum, w) => sum + w.count, 0);
  metrics.gauge("etl_db_locks_waiting", "Locks this database's sessions are waiting for", db, waitingLocks);
  metrics.gauge("etl_db_longest_lock_wait_seconds", "The longest current wait for a lock, in seconds (0 when none)", db, Math.max(0, ...locks.waiting.map((w) => w.longestWaitSeconds)));
  metrics.gauge("etl_db_longest_query_seconds", "How long the longest running statement of another session has run, in seconds (0 when none)", db, longest.query?.seconds ?? 0);
  metrics.gauge("etl_db_longest_transaction_seconds", "How long the oldest open transaction of another session has run, in seconds (0 when none)", db, longest.transaction?.seconds ?? 0);

  if (activity.hiddenSessions > 0) {
    log.warn("sessions of other roles are hidden", { hiddenSessions: activity.hiddenSessions, fix: "grant pg_monitor (or pg_read_all_stats) to this role to see their state, transactions and queries" });
  }
  const sessions = activity.byState.reduce((sum, s) => sum + s.count, 0) + activity.hiddenSessions;
  log.info("db metrics", {
    event: "db_metrics.summary",
    datname,
    sizeBytes: database.sizeBytes,
    wraparound: { frozenXidAge: database.frozenXidAge, marginXids: WRAPAROUND_LIMIT - database.frozenXidAge, minMultixactAge: database.minMultixactAge },
    sessions: { total: sessions, hidden: activity.hiddenSessions, byState: Object.fromEntries(activity.byState.map((s) => [s.state, s.count])) },
    locks: { waiting: locks.waiting, held: Object.fromEntries(locks.byMode.filter((l) => l.count > 0).map((l) => [l.mode, l.count])) },
    longestQuery: describeSession(longest.query),
    longestTransaction: describeSession(longest.transaction),
    tables: tables.map(describeTable),
  });
  return { tables: tables.length, sessions, waitingLocks };
}

function publishTableGauges(metrics: Metrics, datname: string, table: TableFigures): void {
  const labels = { datname, schemaname: table.schemaname, relname: table.relname };
  metrics.gauge("pg_stat_user_tables_n_live_tup", "Estimated number of live rows", labels, table.liveTuples);
  metrics.gauge("pg_stat_user_tables_n_dead_tup", "Estimated number of dead rows", labels, table.deadTuples);
  metrics.gauge("pg_stat_user_tables_last_vacuum", "Last time at which this table was manually vacuumed (not counting VACUUM FULL)", labels, table.lastVacuum);
  metrics.gauge("pg_stat_user_tables_last_autovacuum", "Last time at which this table was vacuumed by the autovacuum daemon", labels, table.lastAutovacuum);
  metrics.gauge("pg_stat_user_tables_last_analyze", "Last time at which this table was manually analyzed", labels, table.lastAnalyze);
  metrics.gauge("pg_stat_user_tables_last_autoanalyze", "Last time at which this table was analyzed by the autovacuum daemon", labels, table.lastAutoanalyze);
  metrics.gauge("pg_stat_user_tables_table_size_bytes", "Total disk space used by this table, in bytes", labels, table.tableSizeBytes);
  metrics.gauge("pg_stat_user_tables_index_size_bytes", "Total disk space used by this index, in bytes", labels, table.indexSizeBytes);
}

function describeTable(table: TableFigures): Record<string, unknown> {
  const at = (seconds: number) => (seconds === 0 ? null : new Date(seconds * 1000).toISOString());
  return {
    ...table,
    lastVacuum: at(table.lastVacuum),
    lastAutovacuum: at(table.lastAutovacuum),
    lastAnalyze: at(table.lastAnalyze),
    lastAutoanalyze: at(table.lastAutoanalyze),
  };
}

function describeSession(session: SessionFigures | undefined): Record<string, unknown> | null {
  if (!session) return null;
  return { ...session, seconds: Math.round(session.seconds * 10) / 10, query: session.query === null ? null : queryShape(session.query) };
}

/**
 * A statement as logged: string, dollar-quoted and numeric literals replaced by `?` (as
 * pg_stat_statements shows statements), cut at QUERY_CHARS. A literal is where a password, a
 * token or a person's data would sit, and logs are kept where the database is not.
 */
export function queryShape(query: string): string {
  const masked = query
    .replace(/\$([A-Za-z_]\w*)?\$[^]*?\$\1\$/g, "?")
    // E'...' may escape a quote with a backslash; a literal cut off by track_activity_query_size
    // has no closing quote, and is masked to the end.
    .replace(/\b[eE]'(?:[^'\\]|''|\\[^])*(?:'|$)/g, "?")
    .replace(/'(?:[^']|'')*(?:'|$)/g, "?")
    .replace(/(?<![\w$.])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b/g, "?")
    .replace(/\s+/g, " ")
    .trim();
  return masked.length > QUERY_CHARS ? `${masked.slice(0, QUERY_CHARS)}…` : masked;
}
