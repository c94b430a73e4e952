import type { Sql } from "../core/db/db";

/** The open dead letters of one job (and dataset, when the runs that failed them had a --dataset). */
export interface DeadLetterBacklog {
  job: string;
  /** The `dataset` argument of the run that failed the items last; null when it had none. */
  dataset: string | null;
  open: number;
  /** When the oldest of them first failed. */
  oldestFailedAt: Date;
  /** When one of them last failed. */
  lastFailedAt: Date;
}

/** What is left to replay or discard in etl_dead_letters (migrations/0001, 0005), counted in the database. */
export class DeadLetterBacklogRepository {
  constructor(private readonly sql: Sql) {}

  /** Open dead letters by job and dataset, the job with the oldest first. */
  async openByJob(): Promise<DeadLetterBacklog[]> {
    return this.sql<DeadLetterBacklog[]>`
      select d.job, r.args->>'dataset' as dataset, count(*)::int as open,
             min(d.first_failed_at) as "oldestFailedAt", max(d.last_failed_at) as "lastFailedAt"
      from etl_dead_letters d
      left join etl_job_runs r on r.run_id = d.last_run_id
      where d.resolved_at is null
      group by d.job, r.args->>'dataset'
      order by min(d.first_failed_at), d.job, dataset nulls first`;
  }
}
