import type { Sql } from "../core/db";

export interface DeadLetter {
  itemKey: string;
  error: string;
  payload: Record<string, unknown>;
}

/** etl_dead_letters: items a run could not process, kept for replay (migrations/0001). */
export class DeadLetterRepository {
  constructor(
    private readonly sql: Sql,
    private readonly job: string,
    private readonly runId: string,
  ) {}

  async recordDeadLetters(letters: readonly DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    await this.sql`
      insert into etl_dead_letters (job, run_id, item_key, error, payload)
      select ${this.job}, ${this.runId}::uuid, item_key, error, payload::jsonb
      from unnest(
        ${letters.map((l) => l.itemKey)}::text[],
        ${letters.map((l) => l.error)}::text[],
        ${letters.map((l) => JSON.stringify(l.payload))}::text[]
      ) as t (item_key, error, payload)`;
  }

  /** Marks the open dead letters of these items resolved, once a run has processed them. */
  async resolveDeadLetters(itemKeys: readonly string[]): Promise<number> {
    if (itemKeys.length === 0) return 0;
    const result = await this.sql`
      update etl_dead_letters
      set resolved_at = now()
      where job = ${this.job}
        and item_key = any(${itemKeys as string[]})
        and resolved_at is null`;
    return result.count;
  }

  async listOpenDeadLetters(): Promise<Array<DeadLetter & { runId: string }>> {
    return this.sql`
      select item_key as "itemKey", error, payload, run_id::text as "runId"
      from etl_dead_letters
      where job = ${this.job} and resolved_at is null
      order by id`;
  }
}
