import type { Sql } from "../core/db/db";

/** A table and timestamptz column whose max() a freshness source reads. */
export interface DeclaredColumn {
  /** `name` or `schema.name`. */
  table: string;
  column: string;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

/**
 * What freshness_monitor reads from the database: the newest committed silver partition
 * (etl_partitions), a job's last success (etl_job_runs), and max(column) of a declared table.
 */
export class FreshnessRepository {
  /**
   * `declared` are the only table columns maxOfColumn reads: identifiers come from the source
   * declarations in code, are checked against this list and quoted, never taken from input.
   */
  constructor(
    private readonly sql: Sql,
    private readonly declared: readonly DeclaredColumn[],
  ) {}

  /** The dataset's partition with the latest date, when it was committed and by which run. */
  async newestPartition(dataset: string): Promise<{ partitionDate: string; committedAt: Date; runId: string } | undefined> {
    const [row] = await this.sql<{ partitionDate: string; committedAt: Date; runId: string }[]>`
      select to_char(partition_date, 'YYYY-MM-DD') as "partitionDate", committed_at as "committedAt", run_id::text as "runId"
      from etl_partitions
      where dataset = ${dataset}
      order by partition_date desc
      limit 1`;
    return row;
  }

  /**
   * When the job last succeeded whole, and the run that finished it: a sharded job's logical date
   * counts once every shard of it (`i/n`) has a succeeded run, at the last one's finish, so three
   * shards of four succeeding every night do not keep the source fresh. Dry runs do no work.
   */
  async lastSuccess(job: string): Promise<{ finishedAt: Date; runId: string } | undefined> {
    const [row] = await this.sql<{ finishedAt: Date; runId: string }[]>`
      select max(finished_at) as "finishedAt", (array_agg(run_id::text order by finished_at desc))[1] as "runId"
      from (
        select run_id, finished_at, logical_date, shard, coalesce(nullif(split_part(shard, '/', 2), '')::int, 1) as shards
        from etl_job_runs
        where job = ${job} and status = 'succeeded' and not dry_run and finished_at is not null
      ) succeeded
      group by logical_date, shards
      having count(distinct coalesce(shard, '')) >= min(shards)
      order by max(finished_at) desc
      limit 1`;
    return row;
  }

  /**
   * max(column) of the table; null when the table is empty. Throws naming the column when it is
   * not declared, does not exist, or is not timestamptz (a timestamp without time zone has no
   * instant to measure a lag from).
   */
  async maxOfColumn(table: string, column: string): Promise<Date | null> {
    const parts = table.split(".");
    const wellFormed = parts.length <= 2 && [...parts, column].every((part) => IDENTIFIER.test(part));
    if (!wellFormed || !this.declared.some((d) => d.table === table && d.column === column)) {
      throw new Error(`${table}.${column} is not a declared freshness column`);
    }
    const [found] = await this.sql<{ type: string }[]>`
      select format_type(atttypid, atttypmod) as type
      from pg_attribute
      where attrelid = to_regclass(${table}) and attname = ${column} and not attisdropped`;
    if (!found) throw new Error(`no column ${table}.${column} in the database`);
    if (found.type !== "timestamp with time zone") throw new Error(`${table}.${column} is ${found.type}, not timestamp with time zone`);
    const [row] = await this.sql<{ maxLoadedAt: Date | null }[]>`select max(${this.sql(column)}) as "maxLoadedAt" from ${this.sql(table)}`;
    return row!.maxLoadedAt;
  }
}
