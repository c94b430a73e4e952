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

/** etl_job_runs by job and logical date (migrations/0004). */
export class SlotRunRepository {
  constructor(private readonly sql: Sql) {}

  /**
   * The runs of `job` whose logical date is in [from, to], dry runs left out, by logical date and
   * start. No index leads with (job, logical_date): the job's rows come through
   * etl_job_runs_job_started_idx and are filtered; a week of a five-minute job is ~2,000 of them.
   */
  async runsInWindow(job: string, from: Date, to: Date, lostAfterMs: number): Promise<SlotRun[]> {
    return this.sql<SlotRun[]>`
      select run_id::text as "runId", status, logical_date as "logicalDate", shard, started_at as "startedAt",
             case when status in ('running', 'lost') then heartbeat_at else coalesce(finished_at, heartbeat_at) end as "endedAt",
             (status = 'running' and heartbeat_at < now() - ${lostAfterMs} * interval '1 millisecond') as "heartbeatStale"
      from etl_job_runs
      where job = ${job} and logical_date between ${from} and ${to} and not dry_run
      order by logical_date, started_at, run_id`;
  }
}
