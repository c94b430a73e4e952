import type postgres from "postgres";
import type { Sql } from "../db/db";

export type LedgerStatus = "running" | "succeeded" | "partial" | "failed" | "interrupted" | "skipped" | "lost";
export type FinishedStatus = Exclude<LedgerStatus, "running" | "lost">;

export interface NewRun {
  runId: string;
  job: string;
  lane: string;
  logicalDate: Date | undefined;
  /** The job's schedule whose arguments the run has (core/runtime/schedules.ts). */
  schedule?: string;
  shard: string | undefined;
  /** Redacted, as the start event shows them. */
  args: Record<string, unknown>;
  argsHash: string;
  forced: boolean;
  dryRun: boolean;
  host: string;
  version: string;
  /** Said in the row's reason, e.g. that the run is a replay. */
  note?: string;
}

export interface RunOutcome {
  status: FinishedStatus;
  exitCode: number;
  counts: Record<string, unknown>;
  metrics: Record<string, unknown>;
  error?: string;
  reason?: string;
}

export interface JobRun {
  runId: string;
  job: string;
  lane: string;
  status: LedgerStatus;
  exitCode: number | null;
  logicalDate: Date | null;
  schedule: string | null;
  shard: string | null;
  args: Record<string, unknown>;
  forced: boolean;
  dryRun: boolean;
  /** In the order the run reported them (migrations/0010). */
  counts: Record<string, number>;
  metrics: Record<string, unknown>;
  error: string | null;
  reason: string | null;
  host: string;
  version: string;
  startedAt: Date;
  heartbeatAt: Date;
  finishedAt: Date | null;
}

/** A daily slot of a job (with one set of arguments), as the ledger tells it. */
export interface SlotState {
  /** YYYY-MM-DD */
  date: string;
  /** succeeded: a run succeeded; failed: runs worked on it, none succeeded; missing: none did. */
  state: "succeeded" | "failed" | "missing";
  lastRunId?: string;
}

export interface RunFilter {
  job?: string;
  status?: LedgerStatus;
  since?: Date;
  limit: number;
}

/** The earlier success of a run's key, which makes the run unnecessary. */
export interface BlockingRun {
  runId: string;
  host: string;
  at: Date;
}

const COLUMNS = `run_id::text as "runId", job, lane, status, exit_code as "exitCode", logical_date as "logicalDate",
  schedule, shard, args, forced, dry_run as "dryRun", counts, count_order as "countOrder", metrics, error, reason, host, version,
  started_at as "startedAt", heartbeat_at as "heartbeatAt", finished_at as "finishedAt"`;

/** A row as selected by COLUMNS, before its counts are put back in the run's order. */
type JobRunRow = JobRun & { countOrder: string[] | null };

/** The row with its counts in the order the run reported them (migrations/0010), then any it did not name. */
function runOf({ countOrder, ...run }: JobRunRow): JobRun {
  const ordered: Record<string, number> = {};
  for (const name of countOrder ?? []) if (Object.hasOwn(run.counts, name)) ordered[name] = run.counts[name]!;
  for (const [name, value] of Object.entries(run.counts)) if (!Object.hasOwn(ordered, name)) ordered[name] = value;
  // Assigned in place, so `counts` keeps its place among the row's fields in JSON.
  run.counts = ordered;
  return run;
}

/** The lowest and highest uuid that start with these hex digits (dashes ignored). */
function uuidRange(prefix: string): [string, string] {
  const hex = prefix.replace(/-/g, "").toLowerCase();
  const uuid = (digits: string) => `${digits.slice(0, 8)}-${digits.slice(8, 12)}-${digits.slice(12, 16)}-${digits.slice(16, 20)}-${digits.slice(20)}`;
  return [uuid(hex.padEnd(32, "0")), uuid(hex.padEnd(32, "f"))];
}

/** etl_job_runs, the run ledger (migrations/0004). */
export class JobRunRepository {
  constructor(private readonly sql: Sql) {}

  /**
   * Records the start of a run, in one transaction: first marks lost the runs of this job whose
   * heartbeat is older than `lostAfterMs`; then, for a run with a logical date, takes the key's
   * transaction lock, marks lost the key's other `running` rows (the caller holds the key's lease,
   * so their runs are dead) and, unless forced, returns the key's success after recording this
   * run as skipped. Otherwise records it running.
   */
  async start(run: NewRun, options: { lostAfterMs: number; skipReason: (succeeded: BlockingRun) => string }): Promise<{ lost: string[]; skipReason?: string }> {
    return this.sql.begin(async (sql) => {
      const lost = await markLost(sql, run.job, options.lostAfterMs);
      let blocking: BlockingRun | undefined;
      if (run.logicalDate !== undefined && !run.dryRun) {
        const key = `etl_job_runs:${run.job}:${run.logicalDate.toISOString()}:${run.shard ?? ""}:${run.argsHash}`;
        await sql`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`;
        const sameSlot = sql`job = ${run.job} and logical_date = ${run.logicalDate} and coalesce(shard, '') = ${run.shard ?? ""} and args_hash = ${run.argsHash} and not dry_run`;
        const dead = await sql<{ runId: string }[]>`
          update etl_job_runs
          set status = 'lost', finished_at = now(), reason = 'its process died without finishing; run ' || ${run.runId} || ' took over its slot'
          where ${sameSlot} and status = 'running'
          returning run_id::text as "runId"`;
        lost.push(...dead.map((d) => d.runId));
        if (!run.forced) {
          [blocking] = await sql<BlockingRun[]>`
            select run_id::text as "runId", status, host, finished_at as at
            from etl_job_runs
            where ${sameSlot} and status = 'succeeded'
            order by finished_at desc
            limit 1`;
        }
      }
      const reason = blocking ? options.skipReason(blocking) : undefined;
      await insertRun(sql, run, reason);
      return { lost, skipReason: reason };
    });
  }

  /** Records a run that does not work at all, e.g. because a live run holds its slot. */
  async recordSkipped(run: NewRun, reason: string): Promise<void> {
    await insertRun(this.sql, run, reason);
  }

  /** Moves the run's heartbeat; false when the row is no longer running (marked lost meanwhile). */
  async heartbeat(runId: string): Promise<boolean> {
    const result = await this.sql`update etl_job_runs set heartbeat_at = now() where run_id = ${runId}::uuid and status = 'running'`;
    return result.count === 1;
  }

  /**
   * Finishes the run's row. A row another run marked lost while this one could not reach the
   * database is finished too: the run did end, and its real outcome beats the guess.
   */
  async finish(runId: string, outcome: RunOutcome): Promise<boolean> {
    const result = await this.sql`
      update etl_job_runs
      set status = ${outcome.status}, exit_code = ${outcome.exitCode}, counts = ${this.sql.json(outcome.counts as never)},
          count_order = ${Object.keys(outcome.counts)}::text[],
          metrics = ${this.sql.json(outcome.metrics as never)}, error = ${outcome.error ?? null},
          reason = coalesce(${outcome.reason ?? null}, reason), finished_at = now(), heartbeat_at = now()
      where run_id = ${runId}::uuid and status in ('running', 'lost')`;
    return result.count === 1;
  }

  async markLost(job: string | undefined, lostAfterMs: number): Promise<string[]> {
    return markLost(this.sql, job, lostAfterMs);
  }

  async listRuns(filter: RunFilter): Promise<JobRun[]> {
    const sql = this.sql;
    const rows = await sql<JobRunRow[]>`
      select ${sql.unsafe(COLUMNS)} from etl_job_runs
      where true
        ${filter.job ? sql`and job = ${filter.job}` : sql``}
        ${filter.status ? sql`and status = ${filter.status}` : sql``}
        ${filter.since ? sql`and started_at >= ${filter.since}` : sql``}
      order by started_at desc, run_id
      limit ${filter.limit}`;
    return rows.map(runOf);
  }

  /** Whether the ledger holds a run of `job` (etl_job_runs_job_started_idx). */
  async hasJob(job: string): Promise<boolean> {
    const [row] = await this.sql<{ found: boolean }[]>`select exists (select 1 from etl_job_runs where job = ${job}) as found`;
    return row!.found;
  }

  /**
   * The runs whose id starts with `prefix` (hex digits, dashes ignored), at most `limit`, by id:
   * a range over the primary key, as uuids compare by their bytes, so the ledger's size does not matter.
   */
  async findRunsByPrefix(prefix: string, limit: number): Promise<JobRun[]> {
    const [low, high] = uuidRange(prefix);
    const rows = await this.sql<JobRunRow[]>`
      select ${this.sql.unsafe(COLUMNS)} from etl_job_runs
      where run_id between ${low}::uuid and ${high}::uuid
      order by run_id
      limit ${limit}`;
    return rows.map(runOf);
  }

  /** The state of each day's slot of `job` run with the arguments hashing to `argsHash`. */
  async slotStates(job: string, argsHash: string, days: readonly string[]): Promise<SlotState[]> {
    if (!days.length) return [];
    return this.sql<SlotState[]>`
      select to_char(logical_date at time zone 'UTC', 'YYYY-MM-DD') as date,
             case when bool_or(status = 'succeeded') then 'succeeded'
                  when bool_or(status not in ('skipped', 'running')) then 'failed'
                  else 'missing' end as state,
             (array_agg(run_id::text order by started_at desc))[1] as "lastRunId"
      from etl_job_runs
      where job = ${job} and args_hash = ${argsHash} and not dry_run
        and logical_date = any(${days.map((d) => `${d}T00:00:00Z`)}::timestamptz[])
      group by logical_date`;
  }

  async findRun(runId: string): Promise<JobRun | undefined> {
    const [run] = await this.sql<JobRunRow[]>`select ${this.sql.unsafe(COLUMNS)} from etl_job_runs where run_id = ${runId}::uuid`;
    return run && runOf(run);
  }
}

/** The run's row: running, or finished as skipped when `skipReason` is given. */
async function insertRun(sql: Sql | postgres.TransactionSql, run: NewRun, skipReason: string | undefined): Promise<void> {
  const skipped = skipReason !== undefined;
  await sql`
    insert into etl_job_runs (run_id, job, lane, status, exit_code, logical_date, schedule, shard, args, args_hash, forced, dry_run,
                              reason, host, version, finished_at)
    values (${run.runId}::uuid, ${run.job}, ${run.lane}, ${skipped ? "skipped" : "running"}, ${skipped ? 0 : null},
            ${run.logicalDate ?? null}, ${run.schedule ?? null}, ${run.shard ?? null}, ${sql.json(run.args as never)}, ${run.argsHash}, ${run.forced},
            ${run.dryRun}, ${skipReason ?? run.note ?? null}, ${run.host}, ${run.version}, ${skipped ? sql`now()` : null})`;
}

async function markLost(sql: Sql | postgres.TransactionSql, job: string | undefined, lostAfterMs: number): Promise<string[]> {
  const rows = await sql<{ runId: string }[]>`
    update etl_job_runs
    set status = 'lost', finished_at = now(),
        reason = 'no heartbeat since ' || to_char(heartbeat_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || ': the process was killed or its node lost'
    where status = 'running' and heartbeat_at < now() - ${lostAfterMs} * interval '1 millisecond'
      ${job ? sql`and job = ${job}` : sql``}
    returning run_id::text as "runId"`;
  return rows.map((r) => r.runId);
}
