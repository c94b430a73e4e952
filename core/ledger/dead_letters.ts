import type { Sql } from "../db/db";

export interface DeadLetter {
  itemKey: string;
  error: string;
  payload: Record<string, unknown>;
}

export type Resolution = "processed" | "replayed" | "discarded" | "released";

export interface DeadLetterRow extends DeadLetter {
  id: number;
  job: string;
  /** The run that failed the item first, and the one that failed it last. */
  runId: string;
  lastRunId: string;
  attempts: number;
  firstFailedAt: Date;
  lastFailedAt: Date;
  resolution: Resolution | null;
  resolvedAt: Date | null;
  resolvedByRunId: string | null;
  resolutionReason: string | null;
}

const COLUMNS = `id::int as id, job, item_key as "itemKey", error, payload, run_id::text as "runId", last_run_id::text as "lastRunId",
  attempts, first_failed_at as "firstFailedAt", last_failed_at as "lastFailedAt", resolution, resolved_at as "resolvedAt",
  resolved_by_run_id::text as "resolvedByRunId", resolution_reason as "resolutionReason"`;

/**
 * etl_dead_letters (migrations/0001, 0005): one open row per item a job could not process. A run
 * that fails the item again adds an attempt to it; a run that processes it resolves it.
 */
export class DeadLetterRepository {
  constructor(
    private readonly sql: Sql,
    private readonly job: string,
    private readonly runId: string,
    /** How the items this run processes are resolved: `replayed` in a replay run. */
    private readonly resolvedAs: Exclude<Resolution, "discarded"> = "processed",
  ) {}

  async recordDeadLetters(letters: readonly DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    await this.sql`
      insert into etl_dead_letters as d (job, run_id, last_run_id, item_key, error, payload)
      select distinct on (item_key) ${this.job}, ${this.runId}::uuid, ${this.runId}::uuid, item_key, error, payload::jsonb
      from unnest(
        ${letters.map((l) => l.itemKey)}::text[],
        ${letters.map((l) => l.error)}::text[],
        ${letters.map((l) => JSON.stringify(l.payload))}::text[]
      ) as t (item_key, error, payload)
      on conflict (job, item_key) where resolved_at is null do update
      set attempts = d.attempts + 1, error = excluded.error, payload = excluded.payload,
          last_failed_at = now(), last_run_id = excluded.last_run_id`;
  }

  /** Marks the open dead letters of these items resolved, once this run has processed them. */
  async resolveDeadLetters(itemKeys: readonly string[]): Promise<number> {
    if (itemKeys.length === 0) return 0;
    const result = await this.sql`
      update etl_dead_letters
      set resolved_at = now(), resolution = ${this.resolvedAs}, resolved_by_run_id = ${this.runId}::uuid
      where job = ${this.job}
        and item_key = any(${itemKeys as string[]})
        and resolved_at is null`;
    return result.count;
  }

  async listOpenDeadLetters(): Promise<DeadLetterRow[]> {
    return this.sql<DeadLetterRow[]>`
      select ${this.sql.unsafe(COLUMNS)} from etl_dead_letters
      where job = ${this.job} and resolved_at is null
      order by id`;
  }
}

/** The operator's view of etl_dead_letters, across jobs (`etl dlq`). */
export class DeadLetterAdmin {
  constructor(private readonly sql: Sql) {}

  async list(filter: { job?: string; includeResolved: boolean; limit: number }): Promise<DeadLetterRow[]> {
    const sql = this.sql;
    return sql<DeadLetterRow[]>`
      select ${sql.unsafe(COLUMNS)} from etl_dead_letters
      where true
        ${filter.job ? sql`and job = ${filter.job}` : sql``}
        ${filter.includeResolved ? sql`` : sql`and resolved_at is null`}
      order by job, last_failed_at desc, id
      limit ${filter.limit}`;
  }

  /** The open dead letters of `job`, all of them or those of `itemKeys`, oldest first. */
  async open(job: string, itemKeys?: readonly string[]): Promise<DeadLetterRow[]> {
    const sql = this.sql;
    return sql<DeadLetterRow[]>`
      select ${sql.unsafe(COLUMNS)} from etl_dead_letters
      where job = ${job} and resolved_at is null
        ${itemKeys ? sql`and item_key = any(${itemKeys as string[]})` : sql``}
      order by id`;
  }

  async discard(job: string, itemKeys: readonly string[], reason: string): Promise<string[]> {
    const rows = await this.sql<{ itemKey: string }[]>`
      update etl_dead_letters
      set resolved_at = now(), resolution = 'discarded', resolution_reason = ${reason}
      where job = ${job} and item_key = any(${itemKeys as string[]}) and resolved_at is null
      returning item_key as "itemKey"`;
    return rows.map((r) => r.itemKey);
  }

  /** Resolves the open dead letter of a quarantined file an operator put back for reprocessing. */
  async release(job: string, itemKey: string, reason: string): Promise<boolean> {
    const result = await this.sql`
      update etl_dead_letters
      set resolved_at = now(), resolution = 'released', resolution_reason = ${reason}
      where job = ${job} and item_key = ${itemKey} and resolved_at is null`;
    return result.count > 0;
  }
}
