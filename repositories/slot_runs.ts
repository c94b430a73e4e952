import type { Sql } from "../core/db/db";
import type { LedgerStatus } from "../core/ledger/job_runs";

/** A run of a scheduled job, as the schedule audit reads it from etl_job_runs. */
export interface SlotRun {
  runId: string;
  status: LedgerStatus;
  logicalDate: Date;
  /** `i/n`, or null for an unsharded run. */
  shard: string | null;
  startedAt: Date;
  /** When the run stopped working: finished_at, or for a lost or running run its last heartbeat. */
  endedAt: Date;
  /** A running row whose heartbeat is older than the lost threshold, judged by the database's clock. */
  heartbeatStale: boolean;
}

/** etl_job_runs by job, schedule and logical date (migrations/0004, 0009). */
export class SlotRunRepository {
  constructor(private readonly sql: Sql) {}

  /**
   * The runs of `job`'s schedule `schedule` whose logical date is in [from, to], dry runs left out,
   * by logical date and start (etl_job_runs_schedule_slot_idx, migrations/0009). Rows recorded
   * before runs named their schedule count as the default schedule's.
   */
  async runsInWindow(job: string, schedule: string, from: Date, to: Date, lostAfterMs: number): Promise<SlotRun[]> {
    return this.sql<SlotRun[]>`
      select run_id::text as "runId", status, logical_date as "logicalDate", shard, started_at as "startedAt",
             case when status in ('running', 'lost') then heartbeat_at else coalesce(finished_at, heartbeat_at) end as "endedAt",
             (status = 'running' and heartbeat_at < now() - ${lostAfterMs} * interval '1 millisecond') as "heartbeatStale"
      from etl_job_runs
      where job = ${job} and logical_date between ${from} and ${to} and not dry_run
        and (schedule = ${schedule} or (schedule is null and ${schedule} = 'default'))
      order by logical_date, started_at, run_id`;
  }

  /** The logical date of the schedule's first run ever (etl_job_runs_schedule_slot_idx). */
  async firstSlot(job: string, schedule: string): Promise<Date | undefined> {
    const [row] = await this.sql<{ first: Date | null }[]>`
      select min(logical_date) as first from etl_job_runs
      where job = ${job} and not dry_run and logical_date is not null
        and (schedule = ${schedule} or (schedule is null and ${schedule} = 'default'))`;
    return row?.first ?? undefined;
  }

  /** Up to when the last `job` run that succeeded (over every schedule) judged slots: its start minus its grace. */
  async lastAuditedUpTo(job: string, graceMsOf: (args: Record<string, unknown>) => number): Promise<Date | undefined> {
    const [last] = await this.sql<{ startedAt: Date; args: Record<string, unknown> }[]>`
      select started_at as "startedAt", args from etl_job_runs
      where job = ${job} and status = 'succeeded' and not dry_run and args->>'job' is null
      order by started_at desc limit 1`;
    return last && new Date(last.startedAt.getTime() - graceMsOf(last.args));
  }
}
